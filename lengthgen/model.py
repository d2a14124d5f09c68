"""A Transformer: causal decoder (default) or non-causal encoder, pre- or post-norm.

Positions are always explicit. The positional encoding acts through its hooks
(``lengthgen.positional.base``): an embedding added to the token embeddings, a rotation of
q and k built once per forward pass, a bias spec built once (``share_bias``) or per
layer, and a query-dependent score bias (``query_bias``) each layer owns.

``ModelConfig.block`` chooses the form of every block and of the readout:

* ``pre_ln`` (default): GPT-style. LayerNorm (with bias), projections and MLP with biases,
  GELU, q.k / sqrt(D), flax's default inits, token embedding normal(0.02), an untied head
  (``lengthgen.heads.HEADS``).
* ``t5``: the HuggingFace T5 decoder block that Kazemnejad et al. 2023 train every positional
  encoding on. RMSNorm (no bias, no mean subtraction, eps 1e-6: ``T5LayerNorm``), no biases
  anywhere, q.k unscaled (for the softmax family; the softplus normalizers keep their own
  fixed scores, as they take no scale), ReLU MLP, ``T5PreTrainedModel._init_weights`` with
  factor 1 (q (W D)^-0.5, k and v W^-0.5, out (H D)^-0.5, MLP up W^-0.5 and down
  hidden^-0.5, token embedding 1.0, a bias module's declared ``init_std``, i.e. the ``t5``
  table, W^-0.5), and the head tied to the token embedding on ``W^-0.5 h``
  (``lengthgen.heads.tied_vocab_logits``; ``head="vocab"`` with one readout only).
  Dropout stays where ``pre_ln`` has it (embeddings, each residual branch, inside the MLP);
  HF T5 also drops attention weights and the final normalized states, this model does not.
* ``post_ln``: the post-norm encoder of Vaswani et al. 2017 as Deletang et al. 2023 and Ruoss
  et al. 2023 train it (their ``TransformerEncoder``): each layer is
  ``x = LN(x + attention(x))`` then ``x = LN(x + mlp(x))``, with no final norm; LayerNorm eps
  1e-5 (haiku's), q, k, v and out projections without biases, q.k / sqrt(D), a ReLU MLP with
  biases, the token embedding truncated-normal(0.02) and multiplied by sqrt(W) before the
  positional embedding is added, and an untied head (``lengthgen.heads.HEADS``). Dropout
  after the embeddings and on each residual branch, as theirs (none inside the MLP).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import lengthgen.positional as pe
from lengthgen.attention import normalizers
from lengthgen.attention.layer import AttentionSpec, MultiHeadAttention
from lengthgen.config import ModelConfig
from lengthgen.heads import HEADS, check_tied_head, tied_vocab_logits

T5_NORM_EPS = 1e-6  # T5LayerNorm's layer_norm_epsilon
POST_LN_NORM_EPS = 1e-5  # haiku LayerNorm's default eps (the post_ln reference's norm)
POST_LN_EMBED_STD = 0.02  # the post_ln reference's emb_init_scale (truncated normal)


def _named(module: nn.Module, parent: nn.Module, name: str) -> nn.Module:
  """Binds a hook's module to ``parent`` under a stable name (params land under it)."""
  return module.clone(parent=parent, name=name)


def _norm(block: str, dtype, name: str) -> nn.Module:
  """The block's normalization: LayerNorm (pre_ln, post_ln: eps 1e-5) or T5's RMSNorm (t5)."""
  if block == "t5":
    return nn.RMSNorm(epsilon=T5_NORM_EPS, dtype=dtype, name=name)
  if block == "post_ln":
    return nn.LayerNorm(epsilon=POST_LN_NORM_EPS, dtype=dtype, name=name)
  return nn.LayerNorm(dtype=dtype, name=name)


def _bias_module(encoding: pe.Encoding, c: ModelConfig) -> nn.Module | None:
  """The encoding's bias module; under ``t5``, one declaring ``init_std`` starts at W^-0.5."""
  module = encoding.bias(c.num_heads, causal=c.causal)
  if (module is not None and c.block == "t5"
      and "init_std" in {f.name for f in dataclasses.fields(module)}):
    module = module.clone(init_std=c.width ** -0.5)
  return module


class Mlp(nn.Module):
  """The feed-forward branch: up, activation, dropout, down.

  Attributes:
    hidden: the inner width.
    dropout: the rate of the dropout between the two projections (none under post_ln).
    dtype: compute dtype.
    block: ``pre_ln`` (GELU, biases, flax's default init), ``post_ln`` (ReLU, biases, flax's
      default init) or ``t5`` (HF T5's ``T5DenseActDense``: ReLU, no biases,
      up ~ N(0, W^-0.5), down ~ N(0, hidden^-0.5)).
  """

  hidden: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  block: str = "pre_ln"

  @nn.compact
  def __call__(self, x_BTW, *, train: bool):
    width = x_BTW.shape[-1]
    if self.block == "t5":
      dense = lambda features, std, name: nn.Dense(
          features, use_bias=False, kernel_init=nn.initializers.normal(std), dtype=self.dtype,
          name=name)
      h = nn.relu(dense(self.hidden, width ** -0.5, "up")(x_BTW))
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
      return dense(width, self.hidden ** -0.5, "down")(h)
    post = self.block == "post_ln"  # the post-norm reference: ReLU, no dropout inside the MLP
    h = (nn.relu if post else nn.gelu)(nn.Dense(self.hidden, dtype=self.dtype, name="up")(x_BTW))
    if not post:
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(width, dtype=self.dtype, name="down")(h)


class Block(nn.Module):
  """One layer: x + attention(norm(x)), then x + mlp(norm(x)) (pre_ln, t5); under post_ln
  norm(x + attention(x)), then norm(x + mlp(x)).

  Attributes:
    config: the architecture (``config.block`` chooses the norms, projections and inits).
    encoding: the positional encoding whose hooks the layer applies.
  """

  config: ModelConfig
  encoding: pe.Encoding

  @nn.compact
  def __call__(self, x_BTW, *, positions_BT, rotation, bias, lengths, train,
               return_weights=False, cap_rotation=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    t5 = c.block == "t5"
    if bias is None and not self.encoding.share_bias:
      bias_module = _bias_module(self.encoding, c)
      if bias_module is not None:
        bias = _named(bias_module, self, "position_bias")(positions_BT, positions_BT,
                                                          train=train)
    takes_scale = normalizers.get(c.normalizer).takes_scale
    spec = AttentionSpec(
        num_heads=c.num_heads, head_dim=c.head_dim, normalizer=c.normalizer,
        normalizer_options=c.normalizer_options, causal=c.causal, window=c.window,
        global_tokens=c.global_tokens, implementation=c.attention_implementation,
        qk_norm=c.qk_norm, length_temperature=c.length_temperature,
        score_scale=1.0 if t5 and takes_scale else None,
        use_bias=c.block == "pre_ln", init="t5" if t5 else "lecun_normal", dtype=c.dtype)
    norm = lambda name: _norm(c.block, dtype, name)
    drop = lambda x: nn.Dropout(c.dropout, deterministic=not train)(x)  # Dropout_0, then _1
    query_bias = self.encoding.query_bias(c.num_heads, c.head_dim)
    attention = lambda x: MultiHeadAttention(spec, name="attention")(
        x, positions_BT=positions_BT, rotation=rotation, bias=bias, lengths=lengths,
        return_weights=return_weights, cap_rotation=cap_rotation, query_bias=query_bias,
        train=train)
    mlp = Mlp(int(c.width * c.mlp_ratio), c.dropout, dtype, c.block, name="mlp")
    if c.block == "post_ln":
      h, weights = attention(x_BTW)
      x_BTW = norm("ln_attention")(x_BTW + drop(h))
      x_BTW = norm("ln_mlp")(x_BTW + drop(mlp(x_BTW, train=train)))
    else:
      h, weights = attention(norm("ln_attention")(x_BTW))
      x_BTW = x_BTW + drop(h)
      x_BTW = x_BTW + drop(mlp(norm("ln_mlp")(x_BTW), train=train))
    return x_BTW, weights


class Transformer(nn.Module):
  """Token ids [B, T] -> logits [B, T, V].

  Attributes:
    config: the architecture.
    vocab_size: number of token ids.
    num_tasks: readouts of the output head, one per task of a mixture (the example's task id
      selects one); 1 for a single task or a shared readout.
  """

  config: ModelConfig
  vocab_size: int
  num_tasks: int = 1

  @property
  def encoding(self) -> pe.Encoding:
    return pe.get(self.config.positional, **self.config.positional_options)

  @nn.compact
  def __call__(self, tokens_BT: jax.Array, positions_BT: jax.Array | None = None, *,
               lengths: jax.Array | None = None, task_ids_B: jax.Array | None = None,
               train: bool = False, return_attention: bool = False):
    """Runs the model.

    Args:
      tokens_BT: int token ids.
      positions_BT: int positions; default 0..T-1 for every example.
      lengths: [B] valid tokens per example; keys beyond are masked (needed for the
        encoder with right padding; a causal decoder never looks ahead anyway).
      task_ids_B: int task of each example (selects its readout when ``num_tasks > 1``).
      train: enables dropout (needs a "dropout" rng).
      return_attention: also return the attention weights of every layer, [L, B, H, T, T].

    Returns:
      logits [B, T, V] float32, or (logits, weights) with ``return_attention``.

    Raises:
      ValueError: ``block="t5"`` with a head other than ``vocab`` or ``num_tasks > 1`` (the
        tied readout is one vocabulary readout).
    """
    c = self.config
    dtype = jnp.dtype(c.dtype)
    t5 = c.block == "t5"
    if t5:
      check_tied_head(c.head, self.num_tasks)
    b, t = tokens_BT.shape
    if positions_BT is None:
      positions_BT = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    encoding = self.encoding
    try:  # concrete positions are checked here; traced ones by config validation
      max_position = int(np.max(np.asarray(positions_BT)))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
      max_position = None
    if max_position is not None:
      encoding.check_positions(max_position)

    post = c.block == "post_ln"
    embedding_init = (nn.initializers.truncated_normal(POST_LN_EMBED_STD) if post
                      else nn.initializers.normal(1.0 if t5 else 0.02))
    embed = nn.Embed(self.vocab_size, c.width, embedding_init=embedding_init, name="embed")
    x = embed(tokens_BT)
    if post:  # the post-norm reference scales the token embedding by sqrt(W)
      x = x * jnp.sqrt(jnp.asarray(c.width, x.dtype))
    embedding = encoding.embedding(c.width)
    if embedding is not None:
      x = x + _named(embedding, self, "position_embedding")(positions_BT, train=train).astype(
          x.dtype)
    x = nn.Dropout(c.dropout, deterministic=not train)(x).astype(dtype)

    rotary = encoding.rotary(c.head_dim)
    rotation = cap_rotation = None
    if rotary is not None:
      rotary = _named(rotary, self, "rotary")
      if c.distance_cap and c.window is not None and c.global_tokens:
        # LM-Infinite: queries as if standing `window` positions after the global tokens, with
        # the length and random draws of the real positions.
        rotation, cap_rotation = rotary(positions_BT, train=train, capped_at=c.window)
      else:
        rotation = rotary(positions_BT, train=train)
    bias = None
    if encoding.share_bias:
      bias_module = _bias_module(encoding, c)
      if bias_module is not None:
        bias = _named(bias_module, self, "position_bias")(positions_BT, positions_BT,
                                                          train=train)

    all_weights = []
    for i in range(c.num_layers):
      x, w = Block(c, encoding, name=f"block_{i}")(
          x, positions_BT=positions_BT, rotation=rotation, bias=bias, lengths=lengths,
          train=train, return_weights=return_attention, cap_rotation=cap_rotation)
      all_weights.append(w)
    if not post:  # a post-norm stack ends on its last block's norm
      x = _norm(c.block, dtype, "ln_final")(x)
    if t5:  # HF T5, tie_word_embeddings=True: (W^-0.5 h) E^T
      logits = tied_vocab_logits(embed, x)
    else:
      logits = HEADS[c.head](self.vocab_size, c.causal, dtype, self.num_tasks, name="head")(
          x, tokens_BT=tokens_BT, lengths=lengths, task_ids_B=task_ids_B)
    if return_attention:
      return logits, jnp.stack(all_weights)
    return logits

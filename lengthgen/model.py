"""A pre-LayerNorm Transformer: causal decoder (default) or non-causal encoder.

Positions are always explicit. The positional encoding acts through its three hooks
(``lengthgen.positional.base``): an embedding added to the token embeddings, a rotation of
q and k built once per forward pass, and a bias spec built once (``share_bias``) or per
layer.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import lengthgen.positional as pe
from lengthgen.attention.layer import AttentionSpec, MultiHeadAttention
from lengthgen.config import ModelConfig
from lengthgen.heads import HEADS


def _named(module: nn.Module, parent: nn.Module, name: str) -> nn.Module:
  """Binds a hook's module to ``parent`` under a stable name (params land under it)."""
  return module.clone(parent=parent, name=name)


class Mlp(nn.Module):
  hidden: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BTW, *, train: bool):
    h = nn.gelu(nn.Dense(self.hidden, dtype=self.dtype, name="up")(x_BTW))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(x_BTW.shape[-1], dtype=self.dtype, name="down")(h)


class Block(nn.Module):
  config: ModelConfig
  encoding: pe.Encoding

  @nn.compact
  def __call__(self, x_BTW, *, positions_BT, rotation, bias, lengths, train,
               return_weights=False, cap_rotation=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    if bias is None and not self.encoding.share_bias:
      bias_module = self.encoding.bias(c.num_heads, causal=c.causal)
      if bias_module is not None:
        bias = _named(bias_module, self, "position_bias")(positions_BT, positions_BT,
                                                          train=train)
    spec = AttentionSpec(
        num_heads=c.num_heads, head_dim=c.head_dim, normalizer=c.normalizer,
        normalizer_options=c.normalizer_options, causal=c.causal, window=c.window,
        global_tokens=c.global_tokens, implementation=c.attention_implementation,
        qk_norm=c.qk_norm, length_temperature=c.length_temperature, dtype=c.dtype)
    h, weights = MultiHeadAttention(spec, name="attention")(
            nn.LayerNorm(dtype=dtype, name="ln_attention")(x_BTW), positions_BT=positions_BT,
            rotation=rotation, bias=bias, lengths=lengths, return_weights=return_weights,
            cap_rotation=cap_rotation)
    x_BTW = x_BTW + nn.Dropout(c.dropout, deterministic=not train)(h)
    h = Mlp(int(c.width * c.mlp_ratio), c.dropout, dtype, name="mlp")(
        nn.LayerNorm(dtype=dtype, name="ln_mlp")(x_BTW), train=train)
    x_BTW = x_BTW + nn.Dropout(c.dropout, deterministic=not train)(h)
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
    """
    c = self.config
    dtype = jnp.dtype(c.dtype)
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

    x = nn.Embed(self.vocab_size, c.width, embedding_init=nn.initializers.normal(0.02),
                 name="embed")(tokens_BT)
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
      bias_module = encoding.bias(c.num_heads, causal=c.causal)
      if bias_module is not None:
        bias = _named(bias_module, self, "position_bias")(positions_BT, positions_BT,
                                                          train=train)

    all_weights = []
    for i in range(c.num_layers):
      x, w = Block(c, encoding, name=f"block_{i}")(
          x, positions_BT=positions_BT, rotation=rotation, bias=bias, lengths=lengths,
          train=train, return_weights=return_attention, cap_rotation=cap_rotation)
      all_weights.append(w)
    x = nn.LayerNorm(dtype=dtype, name="ln_final")(x)
    logits = HEADS[c.head](self.vocab_size, c.causal, dtype, self.num_tasks, name="head")(
        x, tokens_BT=tokens_BT, lengths=lengths, task_ids_B=task_ids_B)
    if return_attention:
      return logits, jnp.stack(all_weights)
    return logits

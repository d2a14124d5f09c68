"""Output heads: map the trunk's final hidden states to per-position vocabulary logits.

* ``vocab``: a linear readout over the vocabulary; with ``num_tasks > 1`` one readout per task
  of a mixture, selected by each example's task id.
* ``pointer`` (Vinyals et al. 2015, Pointer Networks): scores the visible input positions
  instead of vocabulary entries, so an answer that is an input token is produced by pointing
  at it, whatever the length. Position scores are pooled per token id
  (p(v) ∝ Σ_{j: token_j = v} exp(s_tj)) and mixed with a vocabulary readout for tokens that
  cannot be pointed at (separator, end of sequence): p(v) ∝ Σ_j ... + exp(g_v). The loss and
  the metrics stay in vocabulary space.

The ``t5`` block (``ModelConfig.block``) reads out through the token embedding instead, as
HuggingFace T5 with ``tie_word_embeddings=True``: ``tied_vocab_logits``, for ``vocab`` with
one readout only (``check_tied_head``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def select_readout(logits_BTKV: jax.Array, task_ids_B: jax.Array) -> jax.Array:
  """``out[b, t] = logits[b, t, task_ids[b]]``: [B, T, V]."""
  idx = jnp.asarray(task_ids_B, jnp.int32)[:, None, None, None]
  return jnp.take_along_axis(logits_BTKV, idx, axis=2)[:, :, 0]


class VocabHead(nn.Module):
  """A linear readout over the vocabulary (untied from the input embedding), one per task."""

  vocab_size: int
  causal: bool = True
  dtype: Any = jnp.float32
  num_tasks: int = 1

  @nn.compact
  def __call__(self, h_BTW: jax.Array, *, tokens_BT=None, lengths=None,
               task_ids_B=None) -> jax.Array:
    del tokens_BT, lengths
    logits = nn.Dense(self.vocab_size * self.num_tasks, dtype=self.dtype, name="logits")(h_BTW)
    logits = logits.astype(jnp.float32)
    if self.num_tasks == 1:
      return logits
    if task_ids_B is None:
      raise ValueError(f"a head with {self.num_tasks} task readouts needs task_ids_B")
    b, t, _ = logits.shape
    return select_readout(logits.reshape(b, t, self.num_tasks, self.vocab_size), task_ids_B)


def pointer_logits(scores_BTS: jax.Array, tokens_BS: jax.Array, visible_BTS: jax.Array,
                   vocab_size: int) -> jax.Array:
  """log Σ_{s visible, token_s = v} exp(score_ts), float32 [B, T, V] (-inf where no such s)."""
  scores = jnp.where(visible_BTS, scores_BTS.astype(jnp.float32), -jnp.inf)
  row_max = jnp.max(scores, axis=-1, keepdims=True)
  row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
  weights = jnp.exp(scores - jax.lax.stop_gradient(row_max))
  one_hot = jax.nn.one_hot(tokens_BS, vocab_size, dtype=jnp.float32)
  pooled = jnp.einsum("bts,bsv->btv", weights, one_hot)
  safe = jnp.where(pooled > 0, pooled, 1.0)
  return jnp.where(pooled > 0, jnp.log(safe) + row_max, -jnp.inf)


class PointerHead(nn.Module):
  """Points at visible input positions; a vocabulary readout covers the remaining tokens."""

  vocab_size: int
  causal: bool = True
  dtype: Any = jnp.float32
  num_tasks: int = 1

  @nn.compact
  def __call__(self, h_BTW: jax.Array, *, tokens_BT=None, lengths=None,
               task_ids_B=None) -> jax.Array:
    del task_ids_B
    if self.num_tasks != 1:
      raise ValueError("the pointer head has one readout; a task mixture needs the vocab head "
                       "or multitask_head='indicator'")
    if tokens_BT is None:
      raise ValueError("the pointer head needs the input tokens")
    b, t, w = h_BTW.shape
    q = nn.Dense(w, dtype=self.dtype, name="query")(h_BTW).astype(jnp.float32)
    k = nn.Dense(w, dtype=self.dtype, name="key")(h_BTW).astype(jnp.float32)
    scores = jnp.einsum("btw,bsw->bts", q, k) * w ** -0.5
    visible = jnp.ones((b, t, t), dtype=bool)
    if self.causal:
      visible = visible & jnp.tril(jnp.ones((t, t), dtype=bool))[None]
    if lengths is not None:
      visible = visible & (jnp.arange(t)[None, None, :] < jnp.asarray(lengths)[:, None, None])
    point = pointer_logits(scores, tokens_BT, visible, self.vocab_size)
    generate = nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")(h_BTW)
    return jnp.logaddexp(point, generate.astype(jnp.float32))


HEADS = {"vocab": VocabHead, "pointer": PointerHead}


def check_tied_head(head: str, num_tasks: int) -> None:
  """Raises ``ValueError`` unless ``head`` with ``num_tasks`` readouts can be tied.

  The tied readout is the embedding table itself, one vocabulary readout: ``head="vocab"``
  with ``num_tasks == 1``.
  """
  if head != "vocab" or num_tasks != 1:
    raise ValueError(f"the tied output head (block='t5') supports head='vocab' with one "
                     f"readout (num_tasks=1) only; got head={head!r}, num_tasks={num_tasks}. "
                     f"Use block='pre_ln' for the {head} head or per-task readouts.")


def tied_vocab_logits(embed: nn.Embed, h_BTW: jax.Array) -> jax.Array:
  """HuggingFace T5's tied readout: ``(W^-0.5 h) E^T``, float32 logits [B, T, V].

  ``T5ForConditionalGeneration`` with ``tie_word_embeddings=True`` multiplies the final
  hidden states by ``d_model**-0.5`` and projects them with the shared embedding table E
  [V, W]; ``embed`` is that table's module (``nn.Embed.attend``, computed in float32).
  """
  w = h_BTW.shape[-1]
  return embed.attend(h_BTW.astype(jnp.float32) * w ** -0.5).astype(jnp.float32)

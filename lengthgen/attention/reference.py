"""Reference attention in plain jnp (``implementation="xla"``): the semantics every kernel matches.

Scores are computed in float32 whatever the input dtype; the output has q's dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lengthgen.attention import bias as bias_lib
from lengthgen.attention import masks


def attention_weights(q_BTHD, k_BSHD, *, causal=True, window=None, global_tokens=0,
                      bias=None, q_positions=None, k_positions=None, scale=None,
                      lengths=None) -> jax.Array:
  """Softmax attention weights, float32 [B, H, T, S]; fully masked rows are all zero."""
  b, t, _, d = q_BTHD.shape
  s = k_BSHD.shape[1]
  q_positions, k_positions = masks.default_positions(b, t, s, q_positions, k_positions)
  scale = d ** -0.5 if scale is None else scale
  scores = jnp.einsum("bthd,bshd->bhts", q_BTHD.astype(jnp.float32),
                      k_BSHD.astype(jnp.float32)) * scale
  dense = bias_lib.materialize(bias, q_positions, k_positions)
  if dense is not None:
    scores = scores + dense
  mask = masks.make_mask(t, s, causal=causal, window=window, global_tokens=global_tokens,
                         lengths=lengths)
  scores = jnp.where(mask, scores, -jnp.inf)
  row_max = jnp.max(scores, axis=-1, keepdims=True)
  row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
  p = jnp.exp(scores - jax.lax.stop_gradient(row_max))
  denom = jnp.sum(p, axis=-1, keepdims=True)
  return p / jnp.where(denom == 0, 1.0, denom)


def attention(q_BTHD, k_BSHD, v_BSHD, *, return_weights=False, **options):
  """Softmax attention output [B, T, H, D] (and the weights [B, H, T, S] if asked)."""
  w = attention_weights(q_BTHD, k_BSHD, **options)
  out = jnp.einsum("bhts,bshd->bthd", w, v_BSHD.astype(jnp.float32)).astype(q_BTHD.dtype)
  return (out, w) if return_weights else out

"""Normalizers: how masked attention scores become attention weights.

All take float32 scores [B, H, T, S], a boolean mask [B|1, 1, T, S], the number of visible
keys per row ``n_visible`` [B|1, 1, T, 1], and return weights [B, H, T, S] (fully masked rows
are all zero).

* ``softmax``; with ``length_scale`` (task hinting's length-dependent temperature) the logits
  are multiplied by ``1 + a_h * log n`` with a learned per-head ``a_h`` (0 = plain softmax).
* ``ssmax`` (Scalable-Softmax, Nakanishi 2025): logits multiplied by ``s_h * log n``. This is
  not a per-row constant shift (to which softmax is invariant): it sharpens long rows.
* ``softplus`` (LSSA, Gao & Spratling 2025): with unit-normalized q and k,
  ``softplus(log(d) * log(n) * cos)``, masked by multiplication, L1-normalized per row.
* ``softplus_reweight`` (LSSAR): LSSA's weights A, then ``relu(n * A - O)^p`` with O = 1
  except the first three rows (O = 0), L1-normalized again. Computed as ``(x / max x)^p`` in
  log space, so it stays finite at any length in float32 and bfloat16. A row whose entries are
  all at uniform weight (every x <= 0) keeps LSSA's weights.

For the softplus family the score passed in is ``softplus_logits(cos, n, d)`` =
``log(d) * log(n) * cos`` (the caller normalizes q and k) plus any position bias, which
therefore acts inside the softplus, after the length scaling.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _log_n(n_visible):
  return jnp.log(jnp.maximum(n_visible, 1).astype(jnp.float32))


def masked_softmax(logits, mask):
  logits = jnp.where(mask, logits, -jnp.inf)
  row_max = jnp.max(logits, axis=-1, keepdims=True)
  row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
  p = jnp.where(mask, jnp.exp(logits - jax.lax.stop_gradient(row_max)), 0.0)
  denom = jnp.sum(p, axis=-1, keepdims=True)
  return p / jnp.where(denom == 0, 1.0, denom)


def softmax(scores, mask, n_visible, *, length_scale=None, **_):
  if length_scale is not None:
    a = jnp.asarray(length_scale, jnp.float32)[None, :, None, None]
    scores = scores * (1.0 + a * _log_n(n_visible))
  return masked_softmax(scores, mask)


def ssmax(scores, mask, n_visible, *, ssmax_scale=None, **_):
  if ssmax_scale is None:
    raise ValueError("normalizer 'ssmax' needs ssmax_scale: the learned per-head s, shape [H]")
  s = jnp.asarray(ssmax_scale, jnp.float32)[None, :, None, None]
  return masked_softmax(scores * s * _log_n(n_visible), mask)


def softplus_logits(cos, n_visible, head_dim: int):
  """LSSA's argument of the softplus: log(d) * log(n) * cos(q, k)."""
  return jnp.log(float(head_dim)) * _log_n(n_visible) * cos


def softplus(logits, mask, n_visible, **_):
  del n_visible
  a = jax.nn.softplus(logits) * mask
  denom = jnp.sum(a, axis=-1, keepdims=True)
  return a / jnp.where(denom == 0, 1.0, denom)


def softplus_reweight(logits, mask, n_visible, *, query_index, reweight_power=15.0, **_):
  """LSSAR. ``query_index`` [T]: absolute index of each query (rows 0-2 use O = 0)."""
  a = softplus(logits, mask, n_visible)
  offset = jnp.where(query_index < 3, 0.0, 1.0)[None, None, :, None]
  x = jnp.where(mask, n_visible.astype(jnp.float32) * a - offset, 0.0)
  positive = x > 0
  log_x = jnp.log(jnp.where(positive, x, 1.0))
  log_max = jnp.max(jnp.where(positive, log_x, -jnp.inf), axis=-1, keepdims=True)
  any_positive = jnp.isfinite(log_max)
  log_max = jnp.where(any_positive, log_max, 0.0)
  r = jnp.where(positive, jnp.exp(reweight_power * (log_x - jax.lax.stop_gradient(log_max))),
                0.0)
  denom = jnp.sum(r, axis=-1, keepdims=True)
  reweighted = r / jnp.where(denom == 0, 1.0, denom)
  return jnp.where(any_positive, reweighted, a)


NORMALIZERS = {
    "softmax": softmax,
    "ssmax": ssmax,
    "softplus": softplus,
    "softplus_reweight": softplus_reweight,
}
SOFTPLUS_FAMILY = ("softplus", "softplus_reweight")

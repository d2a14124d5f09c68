"""Attention masks as boolean [B|1, 1, T, S] arrays (True = the query may see the key).

Masks act on sequence indices. Queries are aligned to the end of the keys (query i sits at
key index i + S - T), so T < S describes the last T queries of a longer sequence.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def as_int(value, name: str, *, minimum: int) -> int:
  """``value`` as a python int: accepts ints, numpy integers and concrete 0-d integer arrays.

  Raises:
    ValueError: naming ``name``, for a float, a bool, a non-scalar, a traced value or a value
      below ``minimum``.
  """
  integer_like = isinstance(value, (int, np.integer)) or (
      hasattr(value, "dtype") and np.ndim(value) == 0
      and np.issubdtype(np.dtype(value.dtype), np.integer))
  if isinstance(value, (bool, np.bool_)) or not integer_like:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}"
                     f"{f' of type {type(value).__name__}' if not integer_like else ''}")
  try:
    value = int(value)
  except jax.errors.ConcretizationTypeError:
    raise ValueError(f"{name} must be a static integer (it fixes the mask), got a traced "
                     "value") from None
  if value < minimum:
    raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
  return value


def as_window(window) -> int | None:
  """The attention window as a python int >= 1 (integer-likes accepted), or None."""
  return None if window is None else as_int(window, "window", minimum=1)


def default_positions(b: int, t: int, s: int, q_positions=None, k_positions=None, *,
                      q_start: int | None = None):
  """Explicit positions, defaulting to 0..S-1 for keys and the T from ``q_start`` for queries."""
  q_start = s - t if q_start is None else q_start
  if k_positions is None:
    k_positions = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (b, s))
  if q_positions is None:
    q_positions = jnp.broadcast_to(q_start + jnp.arange(t, dtype=jnp.int32), (b, t))
  return jnp.asarray(q_positions), jnp.asarray(k_positions)


def make_mask(t: int, s: int, *, causal: bool = True, window: int | None = None,
              global_tokens: int = 0, lengths: jax.Array | None = None,
              q_start: int | jax.Array | None = None,
              k_index: jax.Array | None = None) -> jax.Array:
  """Boolean mask [B|1, 1, T, S].

  Args:
    causal: query i sees keys j <= i.
    window: if set, query i sees only keys with |i - j| < window (j <= i when causal);
      with ``global_tokens`` > 0 this is LM-Infinite's Lambda mask. An integer >= 1: a
      python int, numpy integer or concrete 0-d integer array (floats and bools are errors).
    global_tokens: the first keys, always visible (subject to causality); an integer >= 0.
    lengths: [B] number of valid keys per example (padding at the end is hidden).
    q_start: key index of the first query (default S - T: queries end with the keys).
    k_index: [S] sequence index of each key, default 0..S-1 (the blockwise reference passes
      a subset of the keys; under a window, an index >= 2**30 is never visible).
  """
  q_start = s - t if q_start is None else q_start
  qi = q_start + jnp.arange(t)[:, None]
  kj = (jnp.arange(s) if k_index is None else jnp.asarray(k_index))[None, :]
  mask = jnp.ones((t, s), dtype=bool)
  if causal:
    mask = kj <= qi
  window = as_window(window)
  global_tokens = as_int(global_tokens, "global_tokens", minimum=0)
  if window is not None:
    local = jnp.abs(qi - kj) < window
    if global_tokens:
      local = local | (kj < global_tokens)
    mask = mask & local
  elif global_tokens:
    raise ValueError("global_tokens needs a window (the Lambda mask is window + global tokens)")
  mask = mask[None, None]
  if lengths is not None:
    mask = mask & (kj[None, None] < jnp.asarray(lengths)[:, None, None, None])
  return mask

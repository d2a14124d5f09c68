"""Shape checks at the attention entry points, with errors that name the argument.

q, k, v are [B, T, H, D], [B, S, H, D], [B, S, H, D]. q, k and v in another layout (e.g.
[B, H, T, D]) are caught wherever another argument pins T, S or H: the positions ([B, T] and
[B, S]), a bias (ALiBi slopes [H], a T5 table [H, buckets], a dense [B|1, H|1, T, S]) and the
normalizer's per-head parameters ([H]); ``lengths`` ([B]) and ``q_capped`` (q's shape) pin
only B or q itself. Without positions, bias or per-head parameters, q, k and v transposed
alike to [B, H, T, D] are a consistent [B, T', H', D] problem and cannot be told apart;
neither can a layout swap when H == T (== S). One of q, k, v transposed alone is caught by
the q/k/v consistency check unless its swapped axes are equal.
Only shapes are read, so the checks cost nothing at run time and work under ``jit``.
"""

from __future__ import annotations

import jax.numpy as jnp

LAYOUT_HINT = "; lengthgen expects [B, T, H, D] (is the array [B, H, T, D]?)"


def _shape(x):
  return tuple(jnp.shape(x))


def check_qkv(q_BTHD, k_BSHD, v_BSHD=None) -> tuple[int, int, int, int, int]:
  """Checks q [B, T, H, D], k [B, S, H, D] and v (k's shape); returns (B, T, S, H, D)."""
  q, k = _shape(q_BTHD), _shape(k_BSHD)
  v = k if v_BSHD is None else _shape(v_BSHD)
  if len(q) != 4 or len(k) != 4 or v != k or q[0] != k[0] or q[2:] != k[2:]:
    raise ValueError(f"expected q [B,T,H,D] and k, v [B,S,H,D] with the same B, H and D; got "
                     f"q {q}, k {k}" + ("" if v_BSHD is None else f", v {v}"))
  b, t, h, d = q
  return b, t, k[1], h, d


def _check_grid(name, value, x_name, x_shape):
  """positions [B or 1, N] for x [B, N, H, D]."""
  shape = _shape(value)
  b, n = x_shape[:2]
  if len(shape) != 2 or shape[0] not in (1, b) or shape[1] != n:
    hint = LAYOUT_HINT if len(shape) == 2 and shape[1] == x_shape[2] != n else ""
    raise ValueError(f"{name} must have shape [B, {'T' if x_name == 'q' else 'S'}] = "
                     f"[{b} (or 1), {n}] to match {x_name} {x_shape}; got shape {shape}{hint}")


def check_inputs(q_BTHD, k_BSHD, v_BSHD=None, *, q_positions=None, k_positions=None,
                 lengths=None, bias=None, q_capped=None) -> tuple[int, int, int, int, int]:
  """Checks the shapes of attention's array arguments against q, k, v; returns (B, T, S, H, D).

  Args:
    q_BTHD, k_BSHD, v_BSHD: queries, keys, values (v may be None: weights only).
    q_positions, k_positions: [B or 1, T] / [B or 1, S] int positions, or None.
    lengths: [B] (or [1]) valid keys per example, or None.
    bias: None, a bias spec with a ``check(num_heads)`` method, or a dense
      [B|1, H|1, T, S] array.
    q_capped: LM-Infinite's capped queries, q's shape, or None.

  Raises:
    ValueError: naming the argument, its expected and its actual shape.
  """
  b, t, s, h, d = check_qkv(q_BTHD, k_BSHD, v_BSHD)
  q_shape = _shape(q_BTHD)
  if q_positions is not None:
    _check_grid("q_positions", q_positions, "q", q_shape)
  if k_positions is not None:
    _check_grid("k_positions", k_positions, "k", _shape(k_BSHD))
  if lengths is not None and _shape(lengths) not in ((b,), (1,)):
    raise ValueError(f"lengths must have shape [B] = ({b},) (valid keys per example, q "
                     f"{q_shape}); got shape {_shape(lengths)}")
  if q_capped is not None and _shape(q_capped) != q_shape:
    raise ValueError(f"q_capped must have q's shape {q_shape}, got {_shape(q_capped)}")
  check_bias(bias, b, t, s, h)
  return b, t, s, h, d


def check_bias(bias, b: int, t: int, s: int, h: int) -> None:
  """Checks a bias spec (its ``check(h)``) or a dense [B|1, H|1, T, S] bias."""
  if bias is None:
    return
  if hasattr(bias, "dense"):
    if hasattr(bias, "check"):
      bias.check(h)
    return
  shape = _shape(bias)
  if len(shape) != 4 or shape[0] not in (1, b) or shape[1] not in (1, h) or shape[2:] != (t, s):
    raise ValueError(f"a dense attention bias must have shape [B|1, H|1, T, S] = "
                     f"[{b} or 1, {h} or 1, {t}, {s}]; got shape {shape}")

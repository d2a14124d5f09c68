"""Pallas flash attention matching ``lengthgen.attention.reference`` (see ``flash.py``).

    from lengthgen.kernels import flash_attention, supports
    ok, why = supports(normalizer="softplus", bias=bias)
    out = flash_attention(q, k, v, causal=True, bias=bias, interpret=True)  # CPU: interpret

The kernels are written in portable Pallas (grid + BlockSpecs + jnp math). Every test run
checks them in Pallas interpret mode on CPU against the reference; the GPU test suite
(``pytest -m gpu``: values and gradients, ragged lengths included) passes with them compiled
through Pallas-Triton on an H100 (jax 0.11.2), so ``gpu`` is in ``VALIDATED_BACKENDS``. They
are not validated on TPU, and their speed is not measured on any backend, so
``implementation="auto"`` uses the XLA reference everywhere (``AUTO_BACKENDS`` is empty).
There are no Mosaic GPU or Mosaic TPU specific versions.

In-kernel normalizers are ``NORMALIZERS``, without learned parameters or options; the scores
follow the normalizer's declared score function (``lengthgen.attention.normalizers``):
scaled q.k, or LSSA's scaled cosine with q and k unit-normalized.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lengthgen.attention import normalizers
from lengthgen.attention.bias import AlibiBias, RelativeBias
from lengthgen.kernels import flash as _flash

NORMALIZERS = ("softmax", "softplus")  # the online updates of ``flash`` (running max or sum)
BLOCK_Q = 32
BLOCK_K = 32
# Backends where the kernels passed the GPU/TPU test suite (pytest -m gpu) compiled on hardware.
VALIDATED_BACKENDS = ("gpu",)
# Backends where implementation="auto" picks the kernels: only where they are validated AND
# measured faster than the XLA reference (scripts/bench_attention.py).
AUTO_BACKENDS = ()


def supports(*, normalizer="softmax", causal=True, window=None, global_tokens=0, bias=None,
             q_positions=None, k_positions=None, scale=None, lengths=None,
             normalizer_params=None, normalizer_options=None, **extra) -> tuple[bool, str]:
  """(True, "") if ``flash_attention`` computes this variant, else (False, reason).

  On a GPU or TPU this is (False, ...) unless the backend is in ``AUTO_BACKENDS``, so
  ``implementation="auto"`` keeps using the reference; ``flash_attention`` itself still runs.
  """
  ok, reason = _variant_supported(normalizer=normalizer, window=window,
                                  global_tokens=global_tokens, bias=bias,
                                  normalizer_params=normalizer_params,
                                  normalizer_options=normalizer_options, **extra)
  backend = jax.default_backend()
  if ok and backend in ("gpu", "tpu") and backend not in AUTO_BACKENDS:
    if backend in VALIDATED_BACKENDS:
      return False, (f"the Pallas kernels are validated on {backend} but not measured faster "
                     "than the XLA reference there; implementation='pallas' uses them")
    return False, (f"the Pallas kernels are not validated on {backend} (tested in interpret "
                   "mode only); implementation='pallas' tries them")
  return ok, reason


def _variant_supported(*, normalizer, window, global_tokens, bias, normalizer_params=None,
                       normalizer_options=None, **extra):
  if normalizer not in NORMALIZERS:
    return False, (f"normalizer {normalizer!r} is not implemented in-kernel; kernel "
                   f"normalizers: {', '.join(NORMALIZERS)}")
  if normalizer_params:
    return False, (f"the kernels do not implement the normalizer parameter(s) "
                   f"{sorted(normalizer_params)}")
  if normalizer_options:
    return False, (f"the kernels do not implement the normalizer option(s) "
                   f"{sorted(normalizer_options)}")
  used = sorted(name for name, value in extra.items() if value is not None)
  if used:
    return False, f"the kernels do not implement the option(s) {used}"
  if bias is not None and not isinstance(bias, (AlibiBias, RelativeBias)):
    return False, ("a dense bias array is not supported by the kernels (that is O(T^2)); "
                   "use AlibiBias or RelativeBias")
  if global_tokens and window is None:
    return False, "global_tokens needs a window (the Lambda mask)"
  if window is not None and (not isinstance(window, int) or window < 1):
    return False, f"window must be a positive integer, got {window!r}"
  return True, ""


def _lssa(normalizer) -> bool:
  """Whether the normalizer scores by LSSA's scaled cosine (else by scaled q.k)."""
  return normalizers.get(normalizer).score is normalizers.lssa_scores


def _row_multiplier(normalizer, b, t, s, d, scale, causal, window, global_tokens, lengths):
  """c_i [B, T]: the softmax scale, or LSSA's log(d) * log(n_i) with n_i the visible keys."""
  if not _lssa(normalizer):
    return jnp.full((b, t), d ** -0.5 if scale is None else scale, jnp.float32)
  qi = (s - t) + jnp.arange(t)[None, :]
  kv_len = jnp.full((b, 1), s) if lengths is None else jnp.minimum(
      jnp.asarray(lengths, jnp.int32)[:, None], s)
  hi = kv_len - 1  # last visible key (inclusive) of the local band
  if causal:
    hi = jnp.minimum(hi, qi)
  elif window is not None:
    hi = jnp.minimum(hi, qi + window - 1)
  lo = jnp.zeros_like(qi) if window is None else jnp.maximum(qi - window + 1, 0)
  n = jnp.maximum(hi - lo + 1, 0)
  if global_tokens:
    limit = jnp.minimum(kv_len, qi + 1) if causal else kv_len
    g = jnp.maximum(jnp.minimum(global_tokens, limit), 0)  # global keys [0, g)
    overlap = jnp.maximum(jnp.minimum(hi, g - 1) - lo + 1, 0)  # already in the band
    n = n + g - overlap
  n = jnp.broadcast_to(n, (b, t))
  return math.log(d) * jnp.log(jnp.maximum(n, 1).astype(jnp.float32))


def _unit(x):
  xf = x.astype(jnp.float32)
  xf = xf * jax.lax.rsqrt(jnp.maximum(jnp.sum(xf * xf, axis=-1, keepdims=True), 1e-12))
  return xf.astype(x.dtype)


def _pad(x, axis, size):
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths)


def flash_attention(q_BTHD, k_BSHD, v_BSHD, *, normalizer="softmax", causal=True, window=None,
                    global_tokens=0, bias=None, q_positions=None, k_positions=None, scale=None,
                    lengths=None, interpret=False, block_q=BLOCK_Q, block_k=BLOCK_K,
                    normalizer_params=None, normalizer_options=None, **extra):
  """Flash attention [B, T, H, D] with the semantics of ``lengthgen.attention.reference``.

  Raises ValueError for a variant ``supports`` rejects (never falls back).
  """
  ok, reason = _variant_supported(normalizer=normalizer, window=window,
                                  global_tokens=global_tokens, bias=bias,
                                  normalizer_params=normalizer_params,
                                  normalizer_options=normalizer_options, **extra)
  if not ok:
    raise ValueError(f"lengthgen.kernels does not support this variant: {reason}")
  b, t, h, d = q_BTHD.shape
  s = k_BSHD.shape[1]
  block_q = min(block_q, max(8, 1 << (t - 1).bit_length()))
  block_k = min(block_k, max(8, 1 << (s - 1).bit_length()))
  tp, sp = -(-t // block_q) * block_q, -(-s // block_k) * block_k
  if _lssa(normalizer):
    q_BTHD, k_BSHD = _unit(q_BTHD), _unit(k_BSHD)
  q = _pad(jnp.swapaxes(q_BTHD, 1, 2), 2, tp)
  k = _pad(jnp.swapaxes(k_BSHD, 1, 2), 2, sp)
  v = _pad(jnp.swapaxes(v_BSHD, 1, 2), 2, sp)
  if q_positions is None:
    q_positions = jnp.broadcast_to(s - t + jnp.arange(t, dtype=jnp.int32), (b, t))
  if k_positions is None:
    k_positions = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (b, s))
  qpos = _pad(jnp.asarray(q_positions, jnp.int32), 1, tp)
  kpos = _pad(jnp.asarray(k_positions, jnp.int32), 1, sp)
  c = _pad(_row_multiplier(normalizer, b, t, s, d, scale, causal, window, global_tokens,
                           lengths), 1, tp)
  lengths_B = jnp.full((b,), s, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
  bias_kind, bidirectional, num_buckets, max_distance = "none", False, 1, 1
  param = jnp.zeros((h,), jnp.float32)
  if isinstance(bias, AlibiBias):
    bias_kind, bidirectional = "alibi", bias.bidirectional
    param = jax.lax.stop_gradient(jnp.asarray(bias.slopes, jnp.float32))
  elif isinstance(bias, RelativeBias):
    bias_kind, bidirectional = "t5", bias.bidirectional
    num_buckets, max_distance = bias.num_buckets, bias.max_distance
    param = jnp.asarray(bias.table_HK, jnp.float32)
  cfg = _flash.Config(normalizer=normalizer, causal=bool(causal), window=window,
                      global_tokens=int(global_tokens), bias_kind=bias_kind,
                      bidirectional=bool(bidirectional), num_buckets=num_buckets,
                      max_distance=max_distance, q_start=s - t, seq_k=s, block_q=block_q,
                      block_k=block_k)
  out = _flash.flash(cfg, bool(interpret), q, k, v, param, (lengths_B, qpos, kpos, c))
  return jnp.swapaxes(out[:, :, :t], 1, 2)


__all__ = ["NORMALIZERS", "flash_attention", "supports"]

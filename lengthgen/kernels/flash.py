"""Flash attention in portable Pallas: online normalization over key blocks, custom VJP.

Layout inside the kernels is [B, H, T, D]. One program handles one (batch, head, query
block) in the forward and dq passes, one (batch, head, key block) in the dk/dv pass. Key
blocks outside the mask (causal future, outside the sliding window, beyond ``lengths``) are
skipped by the loop bounds, so a Lambda mask costs O(T * (window + global_tokens)).

Scores are ``x = c_i * q_i . k_j + bias_ij`` with ``c_i`` the softmax scale or, for LSSA,
``log(d) * log(n_i)`` (q and k unit-normalized by the caller). Softmax keeps the running
max; softplus needs no max (its weights are positive and grow linearly), it accumulates
sum softplus(x) v and sum softplus(x). The backward pass recomputes the tiles; for both
normalizers ``dx = g(x) * (dO_i . v_j - delta_i)`` with ``delta_i = dO_i . o_i`` and
g = exp(x - lse) (softmax) or sigmoid(x) / l (softplus).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from lengthgen.attention.bias import t5_relative_position_bucket


@dataclasses.dataclass(frozen=True)
class Config:
  """Static description of one kernel variant (hashable: used as a jit static argument)."""

  normalizer: str
  causal: bool
  window: int | None
  global_tokens: int
  bias_kind: str  # none | alibi | t5
  bidirectional: bool
  num_buckets: int
  max_distance: int
  q_start: int  # key index of the first query (S - T)
  seq_k: int  # S before padding
  block_q: int
  block_k: int


def _cdiv(a, b):
  return (a + b - 1) // b


def _softplus(x):
  return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


def _tile(cfg, q, k, c, qi, kj, qpos, kpos, kv_len, h, param_ref):
  """Scores x [bq, bk] (float32) and the mask of one tile."""
  x = jnp.dot(q, k.T, preferred_element_type=jnp.float32) * c[:, None]
  mask = kj < kv_len
  if cfg.causal:
    mask = mask & (kj <= qi)
  if cfg.window is not None:
    local = jnp.abs(qi - kj) < cfg.window
    if cfg.global_tokens:
      local = local | (kj < cfg.global_tokens)
    mask = mask & local
  rel = kpos[None, :] - qpos[:, None]
  if cfg.bias_kind == "alibi":
    relf = rel.astype(jnp.float32)
    if cfg.bidirectional:
      relf = -jnp.abs(relf)
    x = x + param_ref[h] * relf
  elif cfg.bias_kind == "t5":
    bucket = _buckets(cfg, rel)
    for b in range(cfg.num_buckets):
      x = x + jnp.where(bucket == b, param_ref[h, b], 0.0)
  return x, mask


def _pow2(n: int) -> int:
  return 1 << (n - 1).bit_length()


def _buckets(cfg, rel):
  return t5_relative_position_bucket(rel, bidirectional=cfg.bidirectional,
                                     num_buckets=cfg.num_buckets, max_distance=cfg.max_distance)


def _key_ranges(cfg, q_lo, q_hi, kv_len, num_k):
  """[(start, stop)] key-block ranges a query block [q_lo, q_hi] may see (disjoint)."""
  bk = cfg.block_k
  base_hi = jnp.minimum(num_k, _cdiv(kv_len, bk))  # bound that also holds for global tokens
  if cfg.causal:
    base_hi = jnp.minimum(base_hi, jnp.maximum(q_hi, -1) // bk + 1)
  if cfg.window is None:
    return [(0, base_hi)]
  hi = base_hi
  if not cfg.causal:
    hi = jnp.minimum(hi, jnp.maximum(q_hi + cfg.window - 1, -1) // bk + 1)
  lo = jnp.maximum(q_lo - cfg.window + 1, 0) // bk
  local = (lo, jnp.maximum(hi, lo))
  if not cfg.global_tokens:
    return [local]
  g_blocks = jnp.minimum(_cdiv(cfg.global_tokens, bk), base_hi)
  # Global blocks before the band, the band, global blocks after it (when the band is short).
  after = jnp.maximum(hi, lo)
  return [(0, jnp.minimum(g_blocks, lo)), local, (after, jnp.maximum(g_blocks, after))]


def _query_range(cfg, k_lo, k_hi, kv_len, num_q):
  """(start, stop) query blocks that may see the key block [k_lo, k_hi]."""
  bq, qs = cfg.block_q, cfg.q_start
  lo = jnp.int32(0)
  hi = jnp.int32(num_q)
  if cfg.causal:
    lo = jnp.maximum(k_lo - qs, 0) // bq
  if cfg.window is not None:
    has_global = k_lo < cfg.global_tokens
    if not cfg.causal:
      lo = jnp.where(has_global, lo, jnp.maximum(k_lo - cfg.window + 1 - qs, 0) // bq)
    w_hi = jnp.clip(jnp.maximum(k_hi + cfg.window - 1 - qs, -1) // bq + 1, 0, num_q)
    hi = jnp.where(has_global, hi, w_hi)
  hi = jnp.where(k_lo < kv_len, hi, lo)
  return lo, jnp.maximum(hi, lo)


def _fwd_kernel(q_ref, k_ref, v_ref, len_ref, qpos_ref, kpos_ref, c_ref, param_ref,
                o_ref, stat_ref, *, cfg):
  b, h, i = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  bq, bk = cfg.block_q, cfg.block_k
  num_k = k_ref.shape[0] // bk
  q = q_ref[...]
  c = c_ref[...]
  qpos = qpos_ref[...]
  kv_len = jnp.minimum(len_ref[b], cfg.seq_k)
  q_lo = cfg.q_start + i * bq
  qi = q_lo + jnp.arange(bq)[:, None]
  d = q.shape[-1]
  softmax = cfg.normalizer == "softmax"

  def body(j, carry):
    m, l, acc = carry
    start = pl.multiple_of(j * bk, bk)
    k = k_ref[pl.ds(start, bk), :]
    v = v_ref[pl.ds(start, bk), :]
    kj = start + jnp.arange(bk)[None, :]
    x, mask = _tile(cfg, q, k, c, qi, kj, qpos, kpos_ref[pl.ds(start, bk)], kv_len, h,
                    param_ref)
    if softmax:
      m_new = jnp.maximum(m, jnp.max(jnp.where(mask, x, -jnp.inf), axis=-1))
      m_safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
      p = jnp.where(mask, jnp.exp(x - m_safe[:, None]), 0.0)
      alpha = jnp.exp(m - m_safe)
      m = m_new
    else:
      p = jnp.where(mask, _softplus(x), 0.0)
      alpha = jnp.ones_like(l)
    l = alpha * l + jnp.sum(p, axis=-1)
    acc = alpha[:, None] * acc + jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return m, l, acc

  carry = (jnp.full((bq,), -jnp.inf, jnp.float32), jnp.zeros((bq,), jnp.float32),
           jnp.zeros((bq, d), jnp.float32))
  for start, stop in _key_ranges(cfg, q_lo, q_lo + bq - 1, kv_len, num_k):
    carry = jax.lax.fori_loop(start, stop, body, carry)
  m, l, acc = carry
  empty = l == 0
  l_safe = jnp.where(empty, 1.0, l)
  o_ref[...] = (acc / l_safe[:, None]).astype(o_ref.dtype)
  if softmax:
    stat_ref[...] = jnp.where(empty, jnp.inf, jnp.where(jnp.isfinite(m), m, 0.0) + jnp.log(l_safe))
  else:
    stat_ref[...] = l_safe


def _grad_tile(cfg, x, mask, stat, do, v, delta):
  """(w, dx): normalized weights and d loss / d score of one tile."""
  dp = jnp.dot(do, v.T, preferred_element_type=jnp.float32)
  if cfg.normalizer == "softmax":
    w = jnp.where(mask, jnp.exp(x - stat[:, None]), 0.0)
    dx = w * (dp - delta[:, None])
  else:
    w = jnp.where(mask, _softplus(x) / stat[:, None], 0.0)
    dx = jnp.where(mask, jax.nn.sigmoid(x) / stat[:, None], 0.0) * (dp - delta[:, None])
  return w, dx


def _dq_kernel(q_ref, k_ref, v_ref, len_ref, qpos_ref, kpos_ref, c_ref, param_ref, do_ref,
               stat_ref, delta_ref, dq_ref, dtable_ref, *, cfg):
  b, h, i = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  bq, bk = cfg.block_q, cfg.block_k
  num_k = k_ref.shape[0] // bk
  q, c, qpos = q_ref[...], c_ref[...], qpos_ref[...]
  do, stat, delta = do_ref[...], stat_ref[...], delta_ref[...]
  kv_len = jnp.minimum(len_ref[b], cfg.seq_k)
  q_lo = cfg.q_start + i * bq
  qi = q_lo + jnp.arange(bq)[:, None]

  def body(j, carry):
    dq, dtable = carry
    start = pl.multiple_of(j * bk, bk)
    k = k_ref[pl.ds(start, bk), :]
    v = v_ref[pl.ds(start, bk), :]
    kj = start + jnp.arange(bk)[None, :]
    kpos = kpos_ref[pl.ds(start, bk)]
    x, mask = _tile(cfg, q, k, c, qi, kj, qpos, kpos, kv_len, h, param_ref)
    _, dx = _grad_tile(cfg, x, mask, stat, do, v, delta)
    dq = dq + jnp.dot(dx.astype(k.dtype), k, preferred_element_type=jnp.float32)
    if cfg.bias_kind == "t5":
      bucket = _buckets(cfg, kpos[None, :] - qpos[:, None])
      lanes = jnp.arange(dtable.shape[0])  # no jnp.stack: Triton stacks only 2 operands
      for n in range(cfg.num_buckets):
        dtable = dtable + jnp.where(lanes == n, jnp.sum(jnp.where(bucket == n, dx, 0.0)), 0.0)
    return dq, dtable

  carry = (jnp.zeros(q.shape, jnp.float32), jnp.zeros((dtable_ref.shape[-1],), jnp.float32))
  for start, stop in _key_ranges(cfg, q_lo, q_lo + bq - 1, kv_len, num_k):
    carry = jax.lax.fori_loop(start, stop, body, carry)
  dq, dtable = carry
  dq_ref[...] = (dq * c[:, None]).astype(dq_ref.dtype)
  dtable_ref[...] = dtable


def _dkv_kernel(q_ref, k_ref, v_ref, len_ref, qpos_ref, kpos_ref, c_ref, param_ref, do_ref,
                stat_ref, delta_ref, dk_ref, dv_ref, *, cfg):
  b, h, j = pl.program_id(0), pl.program_id(1), pl.program_id(2)
  bq, bk = cfg.block_q, cfg.block_k
  num_q = q_ref.shape[0] // bq
  k, v, kpos = k_ref[...], v_ref[...], kpos_ref[...]
  kv_len = jnp.minimum(len_ref[b], cfg.seq_k)
  k_lo = j * bk
  kj = k_lo + jnp.arange(bk)[None, :]

  def body(i, carry):
    dk, dv = carry
    start = pl.multiple_of(i * bq, bq)
    q = q_ref[pl.ds(start, bq), :]
    do = do_ref[pl.ds(start, bq), :]
    c = c_ref[pl.ds(start, bq)]
    qi = cfg.q_start + start + jnp.arange(bq)[:, None]
    x, mask = _tile(cfg, q, k, c, qi, kj, qpos_ref[pl.ds(start, bq)], kpos, kv_len, h,
                    param_ref)
    w, dx = _grad_tile(cfg, x, mask, stat_ref[pl.ds(start, bq)], do, v,
                       delta_ref[pl.ds(start, bq)])
    dv = dv + jnp.dot(w.T.astype(do.dtype), do, preferred_element_type=jnp.float32)
    dxc = (dx * c[:, None]).astype(q.dtype)
    dk = dk + jnp.dot(dxc.T, q, preferred_element_type=jnp.float32)
    return dk, dv

  lo, hi = _query_range(cfg, k_lo, k_lo + bk - 1, kv_len, num_q)
  zeros = jnp.zeros(k.shape, jnp.float32)
  dk, dv = jax.lax.fori_loop(lo, hi, body, (zeros, zeros))
  dk_ref[...] = dk.astype(dk_ref.dtype)
  dv_ref[...] = dv.astype(dv_ref.dtype)


def _specs(cfg, shape_q, shape_k, param, *, over_keys):
  """BlockSpecs for (q, k, v, lengths, qpos, kpos, c, param); the grid walks q or k blocks."""
  b, h, tp, d = shape_q
  sp = shape_k[2]
  sq = pl.Squeezed()
  if over_keys:
    q_spec = pl.BlockSpec((sq, sq, tp, d), lambda b, h, j: (b, h, 0, 0))
    k_spec = pl.BlockSpec((sq, sq, cfg.block_k, d), lambda b, h, j: (b, h, j, 0))
    qrow = pl.BlockSpec((sq, tp), lambda b, h, j: (b, 0))
    krow = pl.BlockSpec((sq, cfg.block_k), lambda b, h, j: (b, j))
  else:
    q_spec = pl.BlockSpec((sq, sq, cfg.block_q, d), lambda b, h, i: (b, h, i, 0))
    k_spec = pl.BlockSpec((sq, sq, sp, d), lambda b, h, i: (b, h, 0, 0))
    qrow = pl.BlockSpec((sq, cfg.block_q), lambda b, h, i: (b, i))
    krow = pl.BlockSpec((sq, sp), lambda b, h, i: (b, 0))
  len_spec = pl.BlockSpec((b,), lambda *_: (0,))
  param_spec = pl.BlockSpec(param.shape, lambda *_: (0,) * param.ndim)
  return [q_spec, k_spec, k_spec, len_spec, qrow, krow, qrow, param_spec], q_spec, qrow


def _forward(cfg, interpret, q, k, v, param, aux):
  lengths, qpos, kpos, c = aux
  b, h, tp, d = q.shape
  in_specs, q_spec, qrow = _specs(cfg, q.shape, k.shape, param, over_keys=False)
  stat_spec = pl.BlockSpec((pl.Squeezed(), pl.Squeezed(), cfg.block_q),
                           lambda b, h, i: (b, h, i))
  o, stat = pl.pallas_call(
      functools.partial(_fwd_kernel, cfg=cfg),
      grid=(b, h, tp // cfg.block_q),
      in_specs=in_specs,
      out_specs=[q_spec, stat_spec],
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((b, h, tp), jnp.float32)],
      interpret=interpret,
      name="lengthgen_flash_fwd",
  )(q, k, v, lengths, qpos, kpos, c, param)
  return o, stat


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def flash(cfg, interpret, q, k, v, param, aux):
  """Attention [B, H, Tp, D] of padded [B, H, *, D] inputs; differentiable in q, k, v, param."""
  return _forward(cfg, interpret, q, k, v, param, aux)[0]


def _flash_fwd(cfg, interpret, q, k, v, param, aux):
  o, stat = _forward(cfg, interpret, q, k, v, param, aux)
  return o, (q, k, v, param, aux, o, stat)


def _flash_bwd(cfg, interpret, res, do):
  q, k, v, param, aux, o, stat = res
  lengths, qpos, kpos, c = aux
  b, h, tp, d = q.shape
  sp = k.shape[2]
  delta = jnp.sum(do.astype(jnp.float32) * o.astype(jnp.float32), axis=-1)
  sq = pl.Squeezed()
  args = (q, k, v, lengths, qpos, kpos, c, param, do, stat, delta)
  nb = _pow2(cfg.num_buckets) if cfg.bias_kind == "t5" else 1  # Triton: power-of-2 blocks
  in_specs, q_spec, _ = _specs(cfg, q.shape, k.shape, param, over_keys=False)
  row = pl.BlockSpec((sq, sq, cfg.block_q), lambda b, h, i: (b, h, i))
  dq, dtable = pl.pallas_call(
      functools.partial(_dq_kernel, cfg=cfg),
      grid=(b, h, tp // cfg.block_q),
      in_specs=in_specs + [q_spec, row, row],
      out_specs=[q_spec, pl.BlockSpec((sq, sq, sq, nb), lambda b, h, i: (b, h, i, 0))],
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((b, h, tp // cfg.block_q, nb), jnp.float32)],
      interpret=interpret,
      name="lengthgen_flash_dq",
  )(*args)
  in_specs, _, _ = _specs(cfg, q.shape, k.shape, param, over_keys=True)
  full_do = pl.BlockSpec((sq, sq, tp, d), lambda b, h, j: (b, h, 0, 0))
  full_row = pl.BlockSpec((sq, sq, tp), lambda b, h, j: (b, h, 0))
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, cfg=cfg),
      grid=(b, h, sp // cfg.block_k),
      in_specs=in_specs + [full_do, full_row, full_row],
      out_specs=[in_specs[1], in_specs[2]],
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype),
                 jax.ShapeDtypeStruct(v.shape, v.dtype)],
      interpret=interpret,
      name="lengthgen_flash_dkv",
  )(*args)
  if cfg.bias_kind == "t5":
    dparam = jnp.sum(dtable, axis=(0, 2))[:, :cfg.num_buckets].astype(param.dtype)
  else:
    dparam = jnp.zeros_like(param)  # ALiBi slopes are constants
  return dq, dk, dv, dparam, jax.tree.map(lambda _: None, aux)


flash.defvjp(_flash_fwd, _flash_bwd)

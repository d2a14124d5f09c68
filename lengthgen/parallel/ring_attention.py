"""Sequence-parallel ring attention for long-context evaluation (``jax.shard_map``).

Queries, keys and values are split along the sequence over a "seq" mesh axis. Each device
keeps its query block and passes its key/value block around the ring (``ppermute``), so after
``n`` hops every query block has met every key block; an online softmax (running max and
normalizer, as in flash attention) combines the blocks exactly. Memory per device is
O(T/n * S/n) scores instead of O(T * S).

Supported: the softmax normalizer, causal or bidirectional, ALiBi (``AlibiBias``), right
padding (``lengths``). Other variants raise ValueError; use the single-device references.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.attention import normalizers
from lengthgen.attention.bias import AlibiBias

SEQ_AXIS = "seq"
RING_NORMALIZERS = ("softmax",)  # the online softmax of ``_ring_block``


def make_seq_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh named "seq" over ``devices`` (default: every device)."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (SEQ_AXIS,), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def _check(normalizer, normalizer_params, normalizer_options, window, global_tokens, bias,
           q_BTHD, k_BSHD, n):
  norm = normalizers.get(normalizer)
  if normalizer not in RING_NORMALIZERS:
    supported = ", ".join(repr(name) for name in RING_NORMALIZERS)
    raise ValueError(f"ring_attention supports normalizer {supported} only, got {normalizer!r}; "
                     "use lengthgen.attention.dot_product_attention for the others")
  params = sorted(name for name, p in (normalizer_params or {}).items() if p is not None)
  options = sorted(norm.resolve_options(normalizer_options))
  if params or options:
    raise ValueError(f"ring_attention does not support normalizer parameters or options, got "
                     f"{params + options}; use lengthgen.attention.dot_product_attention")
  if window is not None or global_tokens:
    raise ValueError("ring_attention does not support window/global_tokens (LM-Infinite mask); "
                     "use lengthgen.attention.dot_product_attention")
  if bias is not None and not isinstance(bias, AlibiBias):
    raise ValueError(f"ring_attention supports bias None or AlibiBias, got "
                     f"{type(bias).__name__}; use lengthgen.attention.dot_product_attention")
  t, s = q_BTHD.shape[1], k_BSHD.shape[1]
  if t != s:
    raise ValueError(f"ring_attention needs self-attention (T == S), got T={t}, S={s}")
  if t % n:
    raise ValueError(f"sequence length {t} must be divisible by the {n} devices of the "
                     f"'{SEQ_AXIS}' axis; pad it")


def ring_attention(q_BTHD, k_BSHD, v_BSHD, *, mesh, causal=True, bias=None, q_positions=None,
                   k_positions=None, lengths=None, scale=None, normalizer="softmax",
                   normalizer_params=None, normalizer_options=None, window=None,
                   global_tokens=0):
  """Attention equal to ``dot_product_attention(..., implementation="xla")``, sequence-split.

  Args:
    q_BTHD, k_BSHD, v_BSHD: queries, keys, values with T == S divisible by the mesh size.
    mesh: a mesh with a "seq" axis (``make_seq_mesh``).
    causal: query i sees keys j <= i.
    bias: None or ``AlibiBias``; positions default to 0..T-1.
    q_positions, k_positions: [B, T] positions for the bias.
    lengths: [B] valid keys per example (right padding masked).
    scale: score scale, default 1/sqrt(D).
    normalizer, normalizer_params, normalizer_options: as for ``dot_product_attention``;
      only ``RING_NORMALIZERS``, without learned parameters or options.
    window, global_tokens: must be unset (no LM-Infinite mask).

  Returns:
    [B, T, H, D] in the dtype of q.
  """
  n = mesh.shape[SEQ_AXIS]
  _check(normalizer, normalizer_params, normalizer_options, window, global_tokens, bias,
         q_BTHD, k_BSHD, n)
  b, t, h, d = q_BTHD.shape
  scale = 1.0 / np.sqrt(d) if scale is None else scale
  arange = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
  q_positions = arange if q_positions is None else jnp.asarray(q_positions, jnp.int32)
  k_positions = arange if k_positions is None else jnp.asarray(k_positions, jnp.int32)
  lengths = jnp.full((b,), t, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
  slopes = (jnp.zeros((h,), jnp.float32) if bias is None
            else jnp.asarray(bias.slopes, jnp.float32))
  bidirectional = bias is not None and bias.bidirectional
  seq = jax.P(None, SEQ_AXIS)
  fn = jax.shard_map(
      functools.partial(_ring_block, n=n, causal=causal, scale=scale,
                        bidirectional=bidirectional),
      mesh=mesh, in_specs=(seq, seq, seq, seq, seq, jax.P(), jax.P()), out_specs=seq,
      check_vma=False)
  return fn(q_BTHD, k_BSHD, v_BSHD, q_positions, k_positions, lengths, slopes)


def _ring_block(q_BTHD, k_BSHD, v_BSHD, qpos_BT, kpos_BS, lengths_B, slopes_H, *, n, causal,
                scale, bidirectional):
  """One device's query block against the key/value blocks passing by on the ring."""
  me = jax.lax.axis_index(SEQ_AXIS)
  b, t, h, d = q_BTHD.shape
  q = q_BTHD.astype(jnp.float32) * scale
  q_index_T = me * t + jnp.arange(t)
  perm = [(i, (i + 1) % n) for i in range(n)]

  def hop(carry, i):
    k, v, kpos, m_BHT, l_BHT, acc_BTHD = carry
    src = (me - i) % n  # the block that has travelled i hops to reach this device
    k_index_S = src * t + jnp.arange(t)
    s_BHTS = jnp.einsum("bthd,bshd->bhts", q, k.astype(jnp.float32))
    rel_BTS = (kpos[:, None, :] - qpos_BT[:, :, None]).astype(jnp.float32)
    if bidirectional:
      rel_BTS = -jnp.abs(rel_BTS)
    s_BHTS = s_BHTS + slopes_H[None, :, None, None] * rel_BTS[:, None]
    visible_BTS = jnp.broadcast_to(k_index_S[None, None, :] < lengths_B[:, None, None],
                                   (b, t, t))
    if causal:
      visible_BTS = visible_BTS & (k_index_S[None, :] <= q_index_T[:, None])[None]
    s_BHTS = jnp.where(visible_BTS[:, None], s_BHTS, -jnp.inf)
    m_new = jnp.maximum(m_BHT, s_BHTS.max(-1))
    m_safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)
    p_BHTS = jnp.exp(s_BHTS - m_safe[..., None])
    correction = jnp.exp(m_BHT - m_safe)
    l_BHT = l_BHT * correction + p_BHTS.sum(-1)
    acc_BTHD = (acc_BTHD * correction.transpose(0, 2, 1)[..., None]
                + jnp.einsum("bhts,bshd->bthd", p_BHTS, v.astype(jnp.float32)))
    k, v, kpos = (jax.lax.ppermute(x, SEQ_AXIS, perm) for x in (k, v, kpos))
    return (k, v, kpos, m_new, l_BHT, acc_BTHD), None

  init = (k_BSHD, v_BSHD, kpos_BS, jnp.full((b, h, t), -jnp.inf, jnp.float32),
          jnp.zeros((b, h, t), jnp.float32), jnp.zeros((b, t, h, d), jnp.float32))
  (_, _, _, _, l_BHT, acc_BTHD), _ = jax.lax.scan(hop, init, jnp.arange(n))
  out = acc_BTHD / jnp.maximum(l_BHT, 1e-30).transpose(0, 2, 1)[..., None]
  return out.astype(q_BTHD.dtype)

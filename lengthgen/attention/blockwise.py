"""Memory-efficient reference attention: the exact reference, one block of queries at a time.

The forward pass evaluates ``reference.attention`` on blocks of ``block_size`` queries
against all keys, so peak memory is O(block_size * S) instead of O(T * S). A custom VJP
recomputes each block in the backward pass (nothing of size T * S is saved), accumulating the
gradients of k, v, the bias spec (a T5 table, ALiBi slopes, a dense bias) and the normalizer's
learned parameters, whatever it declares. Every normalizer, mask and bias of the reference is
supported, with identical semantics, because each block *is* the reference.

Under a window (sliding or Lambda mask) a query block only sees the first ``global_tokens``
keys and a band of ``block + window - 1`` keys (``block + 2 * (window - 1)`` non-causal), so
each block gathers just those keys: cost and memory are linear in T, as for the kernels. A
global token that also lies in the band is marked invisible in its global copy (index
``NEVER_VISIBLE``), so every visible key is counted once. Causal attention without a window
splits the query blocks into ``KEY_GROUPS`` groups that each take only the keys up to their
last query, which roughly halves the cost.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import lengthgen.attention.checks as checks
import lengthgen.attention.masks as masks
import lengthgen.attention.normalizers as normalizers
import lengthgen.attention.reference as reference


NEVER_VISIBLE = 2 ** 30
KEY_GROUPS = 8  # causal attention: query blocks in this many groups, each with its key prefix


def _is_dense(bias) -> bool:
  return bias is not None and not hasattr(bias, "dense")


def _block(i, q_blk, k, v, params, ints, static):
  options = dict(static)
  block_size = options.pop("block_size")
  q_start = options.pop("q_start")
  options["normalizer_options"] = dict(options["normalizer_options"])
  if options.pop("capped"):  # q and the distance-capped q travel together along D
    q_blk, options["q_capped"] = jnp.split(q_blk, 2, axis=-1)
  bias, normalizer_params = params
  q_positions, k_positions, lengths = ints
  start = i * block_size
  if _is_dense(bias):
    bias = jax.lax.dynamic_slice_in_dim(bias, start, block_size, axis=2)
  q_pos = jax.lax.dynamic_slice_in_dim(q_positions, start, block_size, axis=1)
  key_band = options.pop("key_band")
  if key_band is not None:  # only the keys this block can see (see module docstring)
    g, band = key_band
    lo = jnp.clip(q_start + start - (options["window"] - 1), 0, k.shape[1] - band)
    glob = jnp.arange(g)
    take = jnp.concatenate([glob, lo + jnp.arange(band)])
    options["k_index"] = jnp.concatenate([jnp.where(glob >= lo, NEVER_VISIBLE, glob),
                                          lo + jnp.arange(band)])
    k, v, k_positions = (jnp.take(x, take, axis=1) for x in (k, v, k_positions))
    if _is_dense(bias):
      bias = jnp.take(bias, take, axis=3)
  return reference.attention(q_blk, k, v, q_start=q_start + start, q_positions=q_pos,
                             k_positions=k_positions, lengths=lengths, bias=bias,
                             normalizer_params=normalizer_params, **options)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _blockwise(static, q_blocks, k, v, params, ints):
  n = q_blocks.shape[0]
  return jax.lax.map(lambda i: _block(i, q_blocks[i], k, v, params, ints, static),
                     jnp.arange(n))


def _fwd(static, q_blocks, k, v, params, ints):
  return _blockwise(static, q_blocks, k, v, params, ints), (q_blocks, k, v, params, ints)


def _bwd(static, residuals, g_blocks):
  q_blocks, k, v, params, ints = residuals

  def body(carry, i):
    dk, dv, dparams = carry
    f = lambda qb, kk, vv, pp: _block(i, qb, kk, vv, pp, ints, static)
    _, vjp = jax.vjp(f, q_blocks[i], k, v, params)
    dq_i, dk_i, dv_i, dp_i = vjp(g_blocks[i])
    dparams = jax.tree.map(jnp.add, dparams, dp_i)
    return (dk + dk_i, dv + dv_i, dparams), dq_i

  zeros = (jnp.zeros_like(k), jnp.zeros_like(v), jax.tree.map(jnp.zeros_like, params))
  (dk, dv, dparams), dq = jax.lax.scan(body, zeros, jnp.arange(q_blocks.shape[0]))
  return dq, dk, dv, dparams, jax.tree.map(lambda _: None, ints)


_blockwise.defvjp(_fwd, _bwd)


def blockwise_attention(q_BTHD, k_BSHD, v_BSHD, *, block_size: int = 512, bias=None,
                        q_positions=None, k_positions=None, lengths=None,
                        normalizer_params=None, normalizer_options=None, **options):
  """Same result as ``reference.attention`` (same options) in O(block_size * S) memory."""
  if options.pop("return_weights", False):
    raise ValueError("the blockwise implementation does not return attention weights; "
                     "use implementation='xla' for attention maps")
  b, t, s, h, d = checks.check_inputs(q_BTHD, k_BSHD, v_BSHD, q_positions=q_positions,
                                      k_positions=k_positions, lengths=lengths, bias=bias,
                                      q_capped=options.get("q_capped"))
  options["window"] = masks.as_window(options.get("window"))
  q_start = options.pop("q_start", None)
  q_start = s - t if q_start is None else q_start
  q_positions, k_positions = masks.default_positions(b, t, s, q_positions, k_positions,
                                                     q_start=q_start)
  q_capped = options.pop("q_capped", None)
  if q_capped is not None:
    q_BTHD = jnp.concatenate([q_BTHD, q_capped.astype(q_BTHD.dtype)], axis=-1)
  block = max(1, min(block_size, t))
  n = -(-t // block)
  pad = n * block - t
  q_pad = jnp.pad(q_BTHD, ((0, 0), (0, pad), (0, 0), (0, 0)))
  q_blocks = jnp.moveaxis(q_pad.reshape(b, n, block, h, q_BTHD.shape[-1]), 1, 0)
  q_positions = jnp.pad(jnp.asarray(q_positions), ((0, 0), (0, pad)), mode="edge")
  if _is_dense(bias):
    bias = jnp.asarray(bias, jnp.float32)
    bias = jnp.pad(bias, ((0, 0), (0, 0), (0, pad), (0, 0)))
  key_band = None
  window = options.get("window")
  if window is not None:
    band = block + (window - 1) * (1 if options.get("causal", True) else 2)
    g = min(options.get("global_tokens", 0), s)
    if g + band < s:
      key_band = (g, band)
  normalizer_params = normalizers.get(options.get("normalizer", "softmax")).checked_params(
      normalizer_params, num_heads=h)
  normalizer_options = tuple(sorted((normalizer_options or {}).items()))  # hashable: static
  k_positions = jnp.asarray(k_positions)
  lengths = None if lengths is None else jnp.asarray(lengths)

  def run(first, last, keys):
    """Query blocks [first, last) against the first ``keys`` keys."""
    rows = slice(first * block, last * block)
    group_bias = bias[:, :, rows, :keys] if _is_dense(bias) else bias
    static = tuple(sorted({**options, "block_size": block, "q_start": q_start + rows.start,
                           "capped": q_capped is not None, "key_band": key_band,
                           "normalizer_options": normalizer_options}.items()))
    return _blockwise(static, q_blocks[first:last], k_BSHD[:, :keys], v_BSHD[:, :keys],
                      (group_bias, normalizer_params),
                      (q_positions[:, rows], k_positions[:, :keys], lengths))

  if options.get("causal", True) and window is None and n > 1:
    # Causal: a group of query blocks sees only the keys up to its last query, so cost is
    # about half of T * S (KEY_GROUPS compiled shapes).
    edges = sorted({round(i * n / min(n, KEY_GROUPS)) for i in range(min(n, KEY_GROUPS) + 1)})
    out = jnp.concatenate([run(lo, hi, min(s, max(1, q_start + hi * block)))
                           for lo, hi in zip(edges[:-1], edges[1:])], axis=0)
  else:
    out = run(0, n, s)
  out = jnp.moveaxis(out, 0, 1).reshape(b, n * block, h, d)
  return out[:, :t]

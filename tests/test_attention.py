"""Reference attention against independent float64 numpy math: every normalizer, mask, bias."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
import lengthgen.positional as pe

B, T, H, D = 2, 11, 3, 8


def np_attention(q, k, v, *, normalizer, causal=True, window=None, global_tokens=0,
                 bias=None, lengths=None, ssmax_scale=None, length_scale=None, power=15.0):
  """Loops over rows in float64, written from the papers' definitions."""
  b, t, h, d = q.shape
  s = k.shape[1]
  out = np.zeros((b, t, h, d))
  for bi in range(b):
    for hi in range(h):
      for i in range(t):
        qi = s - t + i
        vis = np.ones(s, bool)
        j = np.arange(s)
        if causal:
          vis &= j <= qi
        if window is not None:
          vis &= (np.abs(qi - j) < window) | (j < global_tokens)
        if lengths is not None:
          vis &= j < lengths[bi]
        n = vis.sum()
        if n == 0:
          continue
        bias_row = 0.0 if bias is None else bias[bi, hi, i]
        if normalizer in ("softplus", "softplus_reweight"):
          qn = q[bi, i, hi] / np.linalg.norm(q[bi, i, hi])
          kn = k[bi, :, hi] / np.linalg.norm(k[bi, :, hi], axis=-1, keepdims=True)
          z = math.log(d) * math.log(n) * (kn @ qn) + bias_row
          a = np.log1p(np.exp(z)) * vis
          w = a / a.sum()
          if normalizer == "softplus_reweight":
            o = 0.0 if qi < 3 else 1.0
            r = np.maximum(n * w - o, 0.0) ** power * vis
            w = r / r.sum() if r.sum() > 0 else w
        else:
          logits = (k[bi, :, hi] @ q[bi, i, hi]) / math.sqrt(d) + bias_row
          if normalizer == "ssmax":
            logits = logits * ssmax_scale[hi] * math.log(n)
          if length_scale is not None:
            logits = logits * (1 + length_scale[hi] * math.log(n))
          logits = np.where(vis, logits, -np.inf)
          e = np.exp(logits - logits.max())
          w = e / e.sum()
        out[bi, i, hi] = w @ v[bi, :, hi]
  return out


def _qkv(seed=0, t=T, s=None, scale=1.0):
  s = t if s is None else s
  r = np.random.default_rng(seed)
  return (r.normal(size=(B, t, H, D)) * scale, r.normal(size=(B, s, H, D)) * scale,
          r.normal(size=(B, s, H, D)))


NORMALIZERS = ["softmax", "ssmax", "softplus", "softplus_reweight"]
MASKS = [dict(causal=True), dict(causal=False), dict(causal=True, window=4),
         dict(causal=True, window=3, global_tokens=2), dict(causal=False, window=3),
         dict(causal=True, lengths=np.asarray([11, 7])),
         dict(causal=False, lengths=np.asarray([5, 11]))]


@pytest.mark.parametrize("implementation", ["xla", "xla_blockwise"])
@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("mask", MASKS, ids=lambda m: "-".join(f"{k}{v}" for k, v in m.items()
                                                               if k != "lengths") + (
                                                                   "-ragged" if "lengths" in m else ""))
def test_values_match_float64_math(implementation, normalizer, mask):
  q, k, v = _qkv()
  extra = {"ssmax_scale": np.asarray([0.3, 0.5, 1.2])} if normalizer == "ssmax" else {}
  want = np_attention(q, k, v, normalizer=normalizer, **mask, **extra)
  got = attn.dot_product_attention(jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32),
                                   jnp.asarray(v, jnp.float32), normalizer=normalizer,
                                   implementation=implementation, block_size=4, **mask,
                                   normalizer_params={k_: jnp.asarray(v_) for k_, v_ in
                                                      extra.items()})
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-4, rtol=2e-4)


def _bias_specs():
  slopes = pe.alibi_slopes(H)
  table = np.random.default_rng(3).normal(size=(H, 32))
  pos = np.arange(T)
  rel = pos[None, :] - pos[:, None]
  alibi = slopes[:, None, None] * rel[None]
  buckets = np.asarray(pe.t5_relative_position_bucket(rel, bidirectional=False))
  t5 = table[:, buckets]
  dense = np.random.default_rng(4).normal(size=(1, H, T, T))
  return [("alibi", attn.AlibiBias(jnp.asarray(slopes)), np.broadcast_to(alibi, (B, H, T, T))),
          ("t5", attn.RelativeBias(jnp.asarray(table, jnp.float32)),
           np.broadcast_to(t5, (B, H, T, T))),
          ("dense", jnp.asarray(dense, jnp.float32), np.broadcast_to(dense, (B, H, T, T)))]


@pytest.mark.parametrize("implementation", ["xla", "xla_blockwise"])
@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("spec", _bias_specs(), ids=lambda s: s[0])
def test_bias_specs_match_float64_math(implementation, normalizer, spec):
  _, bias, dense = spec
  q, k, v = _qkv(1)
  extra = {"ssmax_scale": np.asarray([0.3, 0.5, 1.2])} if normalizer == "ssmax" else {}
  want = np_attention(q, k, v, normalizer=normalizer, bias=dense, **extra)
  got = attn.dot_product_attention(jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32),
                                   jnp.asarray(v, jnp.float32), normalizer=normalizer,
                                   bias=bias, implementation=implementation, block_size=4,
                                   normalizer_params={k_: jnp.asarray(v_) for k_, v_ in
                                                      extra.items()})
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-4, rtol=2e-4)


def test_length_temperature_matches_float64_math():
  q, k, v = _qkv(2)
  a = np.asarray([0.0, 0.5, 2.0])
  want = np_attention(q, k, v, normalizer="softmax", length_scale=a)
  got = attn.dot_product_attention(*(jnp.asarray(x, jnp.float32) for x in (q, k, v)),
                                   normalizer_params={"length_scale": jnp.asarray(a)})
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("normalizer", NORMALIZERS)
@pytest.mark.parametrize("bias_kind", ["none", "t5", "alibi"])
def test_gradients_match_float64(normalizer, bias_kind):
  """Gradients of q, k, v (and the T5 table) against float64 JAX autodiff of the same math."""
  q, k, v = _qkv(5)
  table = np.random.default_rng(6).normal(size=(H, 32))
  lengths = np.asarray([11, 8])

  def loss(q, k, v, table, implementation):
    bias = {"none": None, "t5": attn.RelativeBias(table),
            "alibi": attn.AlibiBias(jnp.asarray(pe.alibi_slopes(H), table.dtype))}[bias_kind]
    extra = {"ssmax_scale": jnp.asarray([0.3, 0.5, 1.2], q.dtype)} if normalizer == "ssmax" else {}
    out = attn.dot_product_attention(q, k, v, normalizer=normalizer, bias=bias,
                                     lengths=jnp.asarray(lengths), window=6,
                                     implementation=implementation, block_size=4,
                                     normalizer_params=extra)
    return jnp.sum(jnp.sin(out) * jnp.arange(out.size, dtype=out.dtype).reshape(out.shape) / out.size)

  with jax.enable_x64(True):
    want = jax.grad(loss, argnums=(0, 1, 2, 3))(*(jnp.asarray(x, jnp.float64) for x in
                                                  (q, k, v, table)), "xla")
  for implementation in ("xla", "xla_blockwise"):
    got = jax.grad(loss, argnums=(0, 1, 2, 3))(*(jnp.asarray(x, jnp.float32) for x in
                                                 (q, k, v, table)), implementation)
    chex.assert_trees_all_close(got, jax.tree.map(lambda w: w.astype(jnp.float32), want),
                                atol=2e-4, rtol=2e-3)
  if bias_kind == "t5":
    assert np.abs(np.asarray(got[3])).sum() > 0, "the T5 table gets a gradient"


def _weights(normalizer, t=9, **kw):
  q, k, _ = _qkv(7, t=t)
  _, w = attn.dot_product_attention(jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32),
                                    jnp.asarray(k, jnp.float32), normalizer=normalizer,
                                    implementation="xla", return_weights=True, **kw)
  return np.asarray(w)


def test_lssa_rows_sum_to_one_and_first_row_is_one_hot():
  w = _weights("softplus")
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(w[:, :, 0, 0], 1.0)
  assert (w[:, :, 0, 1:] == 0).all()
  assert (np.triu(w[0, 0], 1) == 0).all(), "masked by multiplication: no weight on the future"


def test_lssar_zeroes_every_entry_at_or_below_uniform_weight():
  a = _weights("softplus", t=12)
  r = _weights("softplus_reweight", t=12)
  n = np.arange(1, 13)[None, None, :, None]
  below = (a <= 1.0 / n) & (np.arange(12)[None, None, :, None] >= 3)
  assert below.any()
  assert (r[below] == 0).all()
  np.testing.assert_allclose(r.sum(-1), 1.0, rtol=1e-5)


def test_ssmax_is_not_a_no_op_nor_a_row_shift():
  q, k, v = (jnp.asarray(x, jnp.float32) for x in _qkv(8))
  soft = attn.dot_product_attention(q, k, v)
  ss = attn.dot_product_attention(q, k, v, normalizer="ssmax",
                                  normalizer_params={"ssmax_scale": jnp.ones(H)})
  assert np.abs(np.asarray(soft - ss)).max() > 1e-2
  # A per-row constant shift (the "exp(x - s log n)" misreading) leaves softmax unchanged.
  shifted = attn.dot_product_attention(q, k, v, bias=jnp.full((1, H, T, T), -3.0))
  np.testing.assert_allclose(np.asarray(shifted), np.asarray(soft), atol=1e-5)


def _long_qkv(t, s, dtype):
  r = jax.random.split(jax.random.key(0), 3)
  return (jax.random.normal(r[0], (1, t, 1, 8), dtype) * 4,
          jax.random.normal(r[1], (1, s, 1, 8), dtype) * 4,
          jax.random.normal(r[2], (1, s, 1, 8), dtype))


# In the default run every normalizer in bfloat16 and softmax, ssmax in float32; the softplus
# normalizers' float32 cases are slow (their bfloat16 cases are the harder ones).
@pytest.mark.parametrize("normalizer,dtype", [
    pytest.param(n, d, marks=pytest.mark.slow if (n.startswith("softplus") and
                                                  d == jnp.float32) else ())
    for d in (jnp.float32, jnp.bfloat16) for n in NORMALIZERS])
def test_finite_values_and_gradients_at_16k_keys(normalizer, dtype):
  """The last 512 queries of a 16K-token sequence (rows with n ~ 16K visible keys), blockwise."""
  q, k, v = _long_qkv(512, 16384, dtype)
  extra = {"ssmax_scale": jnp.ones(1)} if normalizer == "ssmax" else {}

  def loss(q, k, v):
    out = attn.dot_product_attention(q, k, v, normalizer=normalizer, block_size=128,
                                     implementation="xla_blockwise", normalizer_params=extra)
    return jnp.sum(out.astype(jnp.float32) ** 2), out

  (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
  assert out.shape == q.shape and out.dtype == dtype
  assert np.isfinite(np.asarray(out, np.float32)).all()
  assert np.abs(np.asarray(out, np.float32)).max() > 0
  for g in grads:
    assert np.isfinite(np.asarray(g, np.float32)).all()


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_lssar_stays_finite_where_the_naive_power_overflows(dtype):
  """A peaked row at 16K keys: n * A reaches ~5000 and (n A - 1)^15 ~ 1e55 overflows float32."""
  t, s = 4, 16384
  r = np.random.default_rng(11)
  q = np.zeros((1, t, 1, 8))
  q[..., 0] = 1.0
  k = np.concatenate([-np.ones((1, s, 1, 1)), 0.3 * r.normal(size=(1, s, 1, 7))], -1)
  k[0, [5, 700, 9000], 0, 0] = [1.0, 2.0, 0.5]  # a few keys near the query's direction
  k[0, [5, 700, 9000], 0, 1:] = 0.0
  got = {}
  for normalizer in ("softplus", "softplus_reweight"):
    _, w = attn.dot_product_attention(jnp.asarray(q, dtype), jnp.asarray(k, dtype),
                                      jnp.asarray(k, dtype), normalizer=normalizer,
                                      implementation="xla", return_weights=True)
    got[normalizer] = np.asarray(w, np.float64)[0, 0]
  # float64 from the formula, on the inputs as rounded to `dtype`.
  qd, kd = (np.asarray(jnp.asarray(x, dtype), np.float64)[0, :, 0] for x in (q, k))
  cos = (qd / np.linalg.norm(qd, axis=-1, keepdims=True)) @ (
      kd / np.linalg.norm(kd, axis=-1, keepdims=True)).T
  n = np.arange(s - t + 1, s + 1)[:, None]
  visible = np.arange(s)[None, :] < n
  a = np.log1p(np.exp(math.log(8) * np.log(n) * cos)) * visible
  a /= a.sum(-1, keepdims=True)
  x = np.maximum(n * a - 1.0, 0.0)
  with np.errstate(over="ignore"):
    assert not np.isfinite(x.astype(np.float32) ** np.float32(15)).all(), "naive overflows"
  want = x ** 15 / (x ** 15).sum(-1, keepdims=True)
  np.testing.assert_allclose(got["softplus"], a, atol=2e-3 if dtype == jnp.bfloat16 else 1e-5)
  assert np.isfinite(got["softplus_reweight"]).all()
  np.testing.assert_allclose(got["softplus_reweight"], want,
                             atol=3e-2 if dtype == jnp.bfloat16 else 1e-4)


_FULL_16K = [(n, d) for n in NORMALIZERS for d in (jnp.float32, jnp.bfloat16)]


@pytest.mark.parametrize("normalizer,dtype", [
    p if p == ("softplus_reweight", jnp.bfloat16) else pytest.param(*p, marks=pytest.mark.slow)
    for p in _FULL_16K])
def test_finite_at_16k_tokens(normalizer, dtype):
  """Full causal self-attention over 16K tokens through "auto" (which goes blockwise)."""
  t = 16384
  q, k, v = _long_qkv(t, t, dtype)
  extra = {"ssmax_scale": jnp.ones(1)} if normalizer == "ssmax" else {}
  out = attn.dot_product_attention(q, k, v, normalizer=normalizer, implementation="auto",
                                   block_size=2048, normalizer_params=extra)
  assert out.shape == (1, t, 1, 8) and out.dtype == dtype
  assert np.isfinite(np.asarray(out, np.float32)).all()


def test_unsupported_requests_are_errors():
  q = jnp.ones((1, 4, 1, 8))
  with pytest.raises(ValueError, match="does not return attention weights"):
    attn.dot_product_attention(q, q, q, implementation="xla_blockwise", return_weights=True)
  with pytest.raises(ValueError, match="needs ssmax_scale"):
    attn.dot_product_attention(q, q, q, normalizer="ssmax")
  with pytest.raises(ValueError, match="global_tokens needs a window"):
    attn.dot_product_attention(q, q, q, global_tokens=2)


@pytest.mark.parametrize("implementation", ["xla", "xla_blockwise"])
def test_lambda_mask_distance_cap_for_rope(implementation):
  """LM-Infinite: a global token beyond the window is seen from distance `window`."""
  t, window, g = 40, 6, 2
  inv = pe.rope_inv_frequencies(D)
  r = np.random.default_rng(9)
  q_raw = r.normal(size=(1, t, H, D)).astype(np.float32)
  k_raw = r.normal(size=(1, t, H, D)).astype(np.float32)
  v = r.normal(size=(1, t, H, D)).astype(np.float32)
  pos = jnp.arange(t)[None]
  q = pe.apply_rope(jnp.asarray(q_raw), pos, inv)
  k = pe.apply_rope(jnp.asarray(k_raw), pos, inv)
  q_cap = pe.apply_rope(jnp.asarray(q_raw), jnp.full_like(pos, window), inv)
  got = attn.dot_product_attention(q, k, jnp.asarray(v), window=window, global_tokens=g,
                                   q_capped=q_cap, implementation=implementation, block_size=8)
  # float64 rows: local keys at their true distance; far global keys at distance window - j.
  rot = lambda x, p: np.asarray(pe.apply_rope(jnp.asarray(x), jnp.asarray([[p]]), inv),
                                np.float64)[0, 0]
  want = np.zeros((t, H, D))
  for i in range(t):
    for h in range(H):
      logits = np.full(t, -np.inf)
      for j in range(i + 1):
        if i - j < window:
          logits[j] = rot(q_raw[:, i:i + 1], i)[h] @ rot(k_raw[:, j:j + 1], j)[h]
        elif j < g:
          logits[j] = rot(q_raw[:, i:i + 1], window)[h] @ rot(k_raw[:, j:j + 1], j)[h]
      e = np.exp(logits / math.sqrt(D) - np.max(logits / math.sqrt(D)))
      want[i, h] = (e / e.sum()) @ v[0, :, h]
  np.testing.assert_allclose(np.asarray(got)[0], want, atol=2e-4)
  # Without the cap the far global scores differ: the cap is not a no-op.
  plain = attn.dot_product_attention(q, k, jnp.asarray(v), window=window, global_tokens=g)
  assert np.abs(np.asarray(plain) - np.asarray(got)).max() > 1e-3


def test_options_reach_the_weights():
  q, k, v = _qkv(12)
  want = np_attention(q, k, v, normalizer="softplus_reweight", power=3.0)
  got = attn.dot_product_attention(*(jnp.asarray(x, jnp.float32) for x in (q, k, v)),
                                   normalizer="softplus_reweight",
                                   normalizer_options={"power": 3.0})
  np.testing.assert_allclose(np.asarray(got), want, atol=2e-4, rtol=2e-4)

"""The blockwise reference equals the dense reference on random shapes, values and gradients.

Random T != S (queries aligned to the end of the keys), blocks that do not divide T, ragged
lengths, every normalizer, mask and bias kind; gradients include the learned parameters that
the custom VJP accumulates block by block (ssmax's s, the length temperature, ALiBi slopes,
the T5 table, a dense bias).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn

CASES = 8


def _case(seed):
  r = np.random.default_rng(100 + seed)
  b, h, d = int(r.integers(1, 3)), int(r.integers(1, 4)), int(r.choice([4, 8]))
  s = int(r.integers(5, 20))
  t = int(r.integers(1, s + 1))
  normalizer = list(attn.NORMALIZERS)[seed % len(attn.NORMALIZERS)]
  causal = bool(r.integers(0, 2))
  window = None if r.random() < 0.4 else int(r.integers(1, 6))
  global_tokens = int(r.integers(1, 3)) if window is not None and r.random() < 0.5 else 0
  lengths = r.integers(max(1, s - 3), s + 1, size=b)  # ragged; most queries see keys
  bias_kind = ["none", "alibi", "t5", "dense"][(seed + seed // 4) % 4]  # two per normalizer
  block = int(r.integers(1, t + 2))
  arrays = dict(q=r.normal(size=(b, t, h, d)), k=r.normal(size=(b, s, h, d)),
                v=r.normal(size=(b, s, h, d)), slopes=r.uniform(0.05, 1.0, size=h),
                table=r.normal(size=(h, 32)), dense=r.normal(size=(1, h, t, s)),
                ssmax_scale=r.uniform(0.2, 1.5, size=h), length_scale=r.uniform(-0.3, 0.8, size=h))
  static = dict(normalizer=normalizer, causal=causal, window=window, global_tokens=global_tokens,
                lengths=jnp.asarray(lengths))
  return arrays, static, bias_kind, block


@pytest.mark.parametrize("seed", range(CASES))
def test_blockwise_equals_dense_reference(seed):
  arrays, static, bias_kind, block = _case(seed)
  arrays = {name: jnp.asarray(x, jnp.float32) for name, x in arrays.items()}
  normalizer = static["normalizer"]
  wrt = ["q", "k", "v"] + {"alibi": ["slopes"], "t5": ["table"], "dense": ["dense"],
                           "none": []}[bias_kind]
  wrt += {"ssmax": ["ssmax_scale"], "softmax": ["length_scale"]}.get(normalizer, [])

  def loss(params, implementation):
    a = {**arrays, **params}
    bias = {"none": None, "alibi": attn.AlibiBias(a["slopes"]),
            "t5": attn.RelativeBias(a["table"], bidirectional=not static["causal"]),
            "dense": a["dense"]}[bias_kind]
    params = {"ssmax": dict(ssmax_scale=a["ssmax_scale"]),
              "softmax": dict(length_scale=a["length_scale"])}.get(normalizer, {})
    out = attn.dot_product_attention(a["q"], a["k"], a["v"], bias=bias,
                                     implementation=implementation, block_size=block,
                                     normalizer_params=params, **static)
    weights = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
    return jnp.sum(out * weights), out

  params = {name: arrays[name] for name in wrt}
  (_, want), g_want = jax.value_and_grad(loss, has_aux=True)(params, "xla")
  (_, got), g_got = jax.value_and_grad(loss, has_aux=True)(params, "xla_blockwise")
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-5)
  for name in wrt:
    np.testing.assert_allclose(np.asarray(g_got[name]), np.asarray(g_want[name]), atol=1e-4,
                               rtol=1e-4, err_msg=f"gradient of {name}")
  for name in wrt:  # no degenerate case: every gradient checked is informative
    assert np.abs(np.asarray(g_want[name])).max() > 1e-3, name


def test_cases_cover_every_normalizer_bias_and_mask():
  seen = [_case(seed) for seed in range(CASES)]
  assert {s["normalizer"] for _, s, _, _ in seen} == set(attn.NORMALIZERS)
  assert {kind for _, _, kind, _ in seen} == {"none", "alibi", "t5", "dense"}
  assert any(s["global_tokens"] for _, s, _, _ in seen)
  assert any(s["window"] and not s["global_tokens"] for _, s, _, _ in seen)
  assert {s["causal"] for _, s, _, _ in seen} == {True, False}
  assert any(a["q"].shape[1] % block for a, _, _, block in seen), "a ragged last block"


@pytest.mark.parametrize("normalizer,causal", [("softmax", True), ("ssmax", False),
                                               ("softplus", True), ("softplus_reweight", False)])
def test_window_blocks_gather_only_their_key_band(normalizer, causal, monkeypatch):
  """Lambda mask over 40 keys: each block of 8 queries sees 3 global keys + a band of keys."""
  from lengthgen.attention import reference
  key_counts = []
  original = reference.attention
  monkeypatch.setattr(reference, "attention",
                      lambda q, k, v, **kw: key_counts.append(k.shape[1]) or original(q, k, v, **kw))
  r = np.random.default_rng(7)
  t, h, d, window, g = 40, 2, 8, 5, 3
  q, k, v = (jnp.asarray(r.normal(size=(2, t, h, d)), jnp.float32) for _ in range(3))
  dense = jnp.asarray(r.normal(size=(2, h, t, t)), jnp.float32)
  params = dict(ssmax_scale=jnp.asarray([0.7, 1.3])) if normalizer == "ssmax" else {}

  def loss(q, k, v, dense, implementation):
    out = attn.dot_product_attention(q, k, v, normalizer=normalizer, causal=causal,
                                     window=window, global_tokens=g, bias=dense,
                                     lengths=jnp.asarray([40, 33]), block_size=8,
                                     implementation=implementation, normalizer_params=params)
    return jnp.sum(out * jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape))

  want = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(q, k, v, dense, "xla")
  band = 8 + (window - 1) * (1 if causal else 2)
  key_counts.clear()
  got = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(q, k, v, dense, "xla_blockwise")
  assert key_counts and set(key_counts) == {g + band}, key_counts
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(got[1], want[1], atol=1e-4, rtol=1e-4)


def test_causal_query_groups_take_only_their_key_prefix(monkeypatch):
  from lengthgen.attention import blockwise
  seen, real = [], blockwise._blockwise
  monkeypatch.setattr(blockwise, "_blockwise", lambda static, qb, k, *a: (
      seen.append((qb.shape[0], k.shape[1])), real(static, qb, k, *a))[1])
  r = np.random.default_rng(0)
  q, k, v = (jnp.asarray(r.normal(size=(1, 64, 2, 4)), jnp.float32) for _ in range(3))
  got = blockwise.blockwise_attention(q, k, v, block_size=4, causal=True)
  want = attn.dot_product_attention(q, k, v, causal=True, implementation="xla")
  np.testing.assert_allclose(got, want, atol=1e-6)
  assert len(seen) == blockwise.KEY_GROUPS  # 16 blocks in 8 groups of 2 blocks
  assert seen == [(2, 8 * (i + 1)) for i in range(8)]
  assert sum(b * keys for b, keys in seen) < 0.6 * 16 * 64  # about half of T * S

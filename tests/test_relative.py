"""Transformer-XL's relative encoding: the factorized score term against a per-pair reference,
its sign convention, and the model, layer and nnx paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen import build
from lengthgen.attention.layer import AttentionSpec, MultiHeadAttention
from lengthgen import evaluate
from lengthgen.positional.relative import (RelativeLogits, random_distance_map,
                                           relative_sinusoid, sampled_distance_logits)


def _reference(q, k, qpos, kpos, u, v, w_r, max_time=10000.0, distances=None):
  """Per pair, in float64: u . k_j + (q_i + v) . W_r s(p_j - p_i), s = [sin | cos]; with
  ``distances`` [T, S], s(distances[i, j]) instead."""
  b, t, h, d = q.shape
  s_len, width = k.shape[1], w_r.shape[0]
  inv = max_time ** (-np.arange(0, width, 2, dtype=np.float64) / width)
  out = np.zeros((b, h, t, s_len))
  for bi in range(b):
    for i in range(t):
      for j in range(s_len):
        dist = (float(kpos[bi, j]) - float(qpos[bi, i]) if distances is None
                else float(distances[i, j]))
        sin_cos = np.concatenate([np.sin(dist * inv), np.cos(dist * inv)])
        rel_key = np.einsum("c,chd->hd", sin_cos, w_r)             # [H, D]
        out[bi, :, i, j] = (np.einsum("hd,hd->h", u, k[bi, j])
                            + np.einsum("hd,hd->h", q[bi, i] + v, rel_key))
  return out


def _inputs(seed, b=2, t=5, s=5, h=2, d=4):
  rng = np.random.default_rng(seed)
  q, k = rng.normal(size=(b, t, h, d)), rng.normal(size=(b, s, h, d))
  u, v = rng.normal(size=(h, d)), rng.normal(size=(h, d))
  w_r = rng.normal(size=(h * d, h, d)) / np.sqrt(h * d)
  return q, k, u, v, w_r


@pytest.mark.parametrize("positions", ["contiguous", "randomized", "cross"])
def test_factorized_logits_equal_the_per_pair_reference(positions):
  q, k, u, v, w_r = _inputs(0, s=7 if positions == "cross" else 5)
  b, t, s = q.shape[0], q.shape[1], k.shape[1]
  if positions == "contiguous":
    qpos = kpos = np.broadcast_to(np.arange(t), (b, t))
  else:  # sorted random subsets of [0, 2048), as the randomized sampler draws them
    rng = np.random.default_rng(1)
    qpos = np.stack([np.sort(rng.choice(2048, t, replace=False)) for _ in range(b)])
    kpos = (qpos if positions == "randomized"
            else np.stack([np.sort(rng.choice(2048, s, replace=False)) for _ in range(b)]))
  got = pe.relative_logits(jnp.asarray(q, jnp.float32), jnp.asarray(k, jnp.float32), qpos,
                           kpos, content_bias_HD=jnp.asarray(u, jnp.float32),
                           relative_bias_HD=jnp.asarray(v, jnp.float32),
                           w_r_CHD=jnp.asarray(w_r, jnp.float32))
  want = _reference(q, k, qpos, kpos, u, v, w_r)
  np.testing.assert_allclose(np.asarray(got), want, rtol=2e-4, atol=2e-4)


def test_distance_is_key_minus_query_with_sines_first():
  # One head, D = 2, sinusoid width 2 (one frequency, 1): s(d) = [sin d, cos d]. W_r picks
  # the sine into channel 0, so the term is q_i[0] * sin(p_j - p_i): positive for a key one
  # position after the query (as Deletang's relative_shift), negative for one before.
  q = jnp.array([[[[1.0, 0.0]], [[1.0, 0.0]]]])              # [1, 2, 1, 2]
  k = jnp.zeros((1, 2, 1, 2))
  w_r = jnp.zeros((2, 1, 2)).at[0, 0, 0].set(1.0)            # sine channel -> d = 0
  zero = jnp.zeros((1, 2))
  got = pe.relative_logits(q, k, jnp.array([[0, 1]]), jnp.array([[0, 1]]), content_bias_HD=zero,
                           relative_bias_HD=zero, w_r_CHD=w_r)
  np.testing.assert_allclose(np.asarray(got[0, 0]), [[0.0, np.sin(1.0)], [-np.sin(1.0), 0.0]],
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(relative_sinusoid(jnp.array(1), 2)),
                             [np.sin(1.0), np.cos(1.0)], atol=1e-7)


def test_module_scales_the_term_and_owns_u_v_w_r():
  q, k, _, _, _ = _inputs(2)
  pos = jnp.broadcast_to(jnp.arange(5), (2, 5))
  module = RelativeLogits(num_heads=2, head_dim=4)
  params = module.init(jax.random.key(0), q, k, pos, pos, scale=1.0)["params"]
  assert {n: p.shape for n, p in params.items()} == {
      "content_bias": (2, 4), "relative_bias": (2, 4), "w_r": (8, 2, 4)}
  one = module.apply({"params": params}, q, k, pos, pos, scale=1.0)
  half = module.apply({"params": params}, q, k, pos, pos, scale=0.5)
  np.testing.assert_allclose(np.asarray(half), 0.5 * np.asarray(one), rtol=1e-6)
  want = _reference(q, k, pos, pos, *(np.asarray(params[n], np.float64)
                                      for n in ("content_bias", "relative_bias", "w_r")))
  np.testing.assert_allclose(np.asarray(one), want, rtol=2e-4, atol=2e-4)


def _model(causal=True, **model):
  config = build.load_config({
      "task": "copy" if causal else "reverse_string",
      "model": dict(num_layers=2, width=32, num_heads=4, positional="relative",
                    kind="decoder" if causal else "encoder", **model),
      "train": dict(steps=4, batch_size=4, warmup_steps=1, max_length=4),
      "eval": dict(max_length=8)})
  return build.setup(config).model


def test_model_is_translation_invariant_and_trains_every_layers_term():
  model = _model()
  tokens = jnp.asarray(np.random.default_rng(0).integers(1, 3, size=(2, 9)), jnp.int32)
  pos = jnp.broadcast_to(jnp.arange(9), (2, 9))
  params = model.init(jax.random.key(0), tokens, pos)["params"]
  for i in range(2):
    assert set(params[f"block_{i}"]["attention"]["query_bias"]) == {
        "content_bias", "relative_bias", "w_r"}
  apply = jax.jit(lambda p, positions: model.apply({"params": p}, tokens, positions))
  base = apply(params, pos)
  shifted = apply(params, pos + 1000)
  np.testing.assert_allclose(np.asarray(shifted), np.asarray(base), atol=2e-4)
  spread = apply(params, pos * 3)  # other distances, other scores
  assert float(jnp.max(jnp.abs(spread - base))) > 1e-3

  grads = jax.jit(jax.grad(lambda p: jnp.mean(apply(p, pos * 3) ** 2)))(params)
  for i in range(2):
    for name in ("content_bias", "relative_bias", "w_r"):
      assert float(jnp.max(jnp.abs(grads[f"block_{i}"]["attention"]["query_bias"][name]))) > 0


def test_layer_refuses_a_bias_and_a_query_bias_together():
  spec = AttentionSpec(num_heads=2, head_dim=4)
  layer = MultiHeadAttention(spec)
  x = jnp.ones((1, 3, 8))
  pos = jnp.arange(3)[None]
  with pytest.raises(ValueError, match="both a bias and a query_bias"):
    layer.init(jax.random.key(0), x, positions_BT=pos, bias=jnp.zeros((1, 2, 3, 3)),
               query_bias=RelativeLogits(2, 4))


def test_registry_and_bad_options():
  assert isinstance(pe.get("relative"), pe.Relative)
  with pytest.raises(ValueError, match="max_time"):
    pe.get("relative", max_time=1.0)
  with pytest.raises(ValueError, match="valid encodings"):
    pe.get("relatve")


def test_nnx_layer_refuses_a_relative_layer():
  import lengthgen.nnx as lnnx
  spec = AttentionSpec(num_heads=2, head_dim=4)
  layer = MultiHeadAttention(spec)
  x, pos = jnp.ones((1, 3, 8)), jnp.arange(3)[None]
  params = layer.init(jax.random.key(0), x, positions_BT=pos,
                      query_bias=RelativeLogits(2, 4))["params"]
  assert "query_bias" in params
  with pytest.raises(ValueError, match="relative_logits"):
    lnnx.MultiHeadAttention.from_linen(layer, params)


def test_random_distance_map_is_a_sorted_symmetric_draw():
  d = np.asarray(random_distance_map(jax.random.key(0), 6, 6, 50))
  assert d.shape == (6, 6) and d.dtype == np.int32
  np.testing.assert_array_equal(np.diag(d), 0)
  np.testing.assert_array_equal(d, -d.T)                      # D(-x) = -D(x)
  right = d[0, 1:]                                            # D(1), ..., D(5)
  assert np.all(np.diff(right) > 0) and right.min() >= 1 and right.max() < 50
  for i in range(1, 6):                                       # a function of j - i alone
    np.testing.assert_array_equal(d[i, i:], d[0, :6 - i])
  again = np.asarray(random_distance_map(jax.random.key(0), 6, 6, 50))
  other = np.asarray(random_distance_map(jax.random.key(1), 6, 6, 50))
  np.testing.assert_array_equal(again, d)
  assert not np.array_equal(other, d)
  with pytest.raises(ValueError, match="Raise random_distances"):
    random_distance_map(jax.random.key(0), 8, 8, 7)


def test_sampled_distance_logits_equal_the_reference_and_the_index_distances():
  q, k, u, v, w_r = _inputs(3)
  f = lambda x: jnp.asarray(x, jnp.float32)
  weights = dict(content_bias_HD=f(u), relative_bias_HD=f(v), w_r_CHD=f(w_r))
  dist = np.asarray(random_distance_map(jax.random.key(2), 5, 5, 2048))
  got = sampled_distance_logits(f(q), f(k), dist, **weights)
  pos = np.broadcast_to(np.arange(5), (2, 5))
  np.testing.assert_allclose(np.asarray(got), _reference(q, k, pos, pos, u, v, w_r,
                                                         distances=dist), rtol=2e-4, atol=2e-4)
  index = np.arange(5)[None, :] - np.arange(5)[:, None]       # j - i: the plain encoding
  np.testing.assert_allclose(np.asarray(sampled_distance_logits(f(q), f(k), index, **weights)),
                             np.asarray(pe.relative_logits(f(q), f(k), pos, pos, **weights)),
                             rtol=1e-4, atol=1e-4)


def test_random_distances_draw_per_key_and_need_an_rng():
  q, k, _, _, _ = _inputs(4)
  pos = jnp.broadcast_to(jnp.arange(5), (2, 5))
  module = RelativeLogits(num_heads=2, head_dim=4, random_distances=64)
  params = module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, q, k, pos,
                       pos, scale=1.0)
  run = lambda key: np.asarray(module.apply(params, q, k, pos, pos, scale=1.0,
                                            rngs={"dropout": jax.random.key(key)}))
  np.testing.assert_array_equal(run(5), run(5))
  assert np.abs(run(5) - run(6)).max() > 1e-3
  with pytest.raises(ValueError, match="rngs=.'dropout'"):
    module.apply(params, q, k, pos, pos, scale=1.0)
  with pytest.raises(ValueError, match="random_distances"):
    pe.get("relative", random_distances=1)


def test_evaluation_of_random_distances_is_a_function_of_seed_and_length():
  config = build.load_config({
      "task": "reverse_string",
      "model": dict(num_layers=1, width=16, num_heads=2, kind="encoder", positional="relative",
                    positional_options={"random_distances": 64}),
      "train": dict(steps=4, batch_size=4, warmup_steps=1, max_length=4),
      "eval": dict(max_length=8, num_examples=8, batch_size=4)})
  setup = build.setup(config)
  inputs = evaluate.length_inputs(setup, 6)
  params = setup.model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                            inputs["tokens"], inputs["positions"])["params"]
  first = evaluate.evaluate_length(setup, params, 6)
  assert evaluate.evaluate_length(setup, params, 6) == first
  np.testing.assert_array_equal(evaluate.length_inputs(setup, 6)["eval_seed"],
                                inputs["eval_seed"])

"""The full encoding set: golden values from the papers, properties, and every encoding in a model."""

from __future__ import annotations

import ast
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.positional.clex import solve_log_frequencies
from lengthgen.positional.fire import fire_normalized_distance


def hf_bucket(rel, bidirectional, num_buckets=32, max_distance=128):
  """The original T5 bucket function, re-derived in plain python for one integer."""
  n = -rel
  ret = 0
  if bidirectional:
    num_buckets //= 2
    if n < 0:
      ret += num_buckets
    n = abs(n)
  else:
    n = max(n, 0)
  max_exact = num_buckets // 2
  if n < max_exact:
    return ret + n
  val = max_exact + int(math.log(n / max_exact) / math.log(max_distance / max_exact)
                        * (num_buckets - max_exact))
  return ret + min(val, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_t5_buckets_match_the_original_function(bidirectional):
  rel = np.arange(-300, 300)
  got = np.asarray(pe.t5_relative_position_bucket(rel, bidirectional=bidirectional))
  want = [hf_bucket(int(r), bidirectional) for r in rel]
  np.testing.assert_array_equal(got, want)


def test_t5_bucket_golden_values():
  b = lambda r, bi: int(pe.t5_relative_position_bucket(np.asarray(r), bidirectional=bi))
  assert [b(-1, False), b(-15, False), b(-16, False), b(-128, False), b(-10**6, False)] == [
      1, 15, 16, 31, 31]
  assert b(5, False) == 0, "a decoder never sees keys after the query: bucket 0"
  assert [b(-1, True), b(1, True), b(-8, True), b(8, True)] == [1, 17, 8, 24]


def test_shared_math_lives_in_leaf_modules_and_is_re_exported():
  from lengthgen.attention import bias
  from lengthgen.positional import rope, rotary, t5
  assert pe.t5_relative_position_bucket is bias.t5_relative_position_bucket
  assert t5.t5_relative_position_bucket is bias.t5_relative_position_bucket
  assert pe.rotate is rope.rotate is rotary.rotate


def _lengthgen_imports(path: pathlib.Path, modules):
  """(module-level, inside-function) lengthgen imports of ``path``, resolved to ``modules``."""
  tree = ast.parse(path.read_text())
  local = {id(node) for fn in ast.walk(tree)
           if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
           for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))}
  top, inner = set(), set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
               else node.module for a in node.names}
    else:
      continue
    names = {n for n in names if n.startswith("lengthgen")}
    (inner if id(node) in local else top).update(names)
  return top, inner


def test_attention_positional_kernels_import_at_module_top_without_cycles():
  root = pathlib.Path(__file__).resolve().parents[1]
  files = [p for d in ("attention", "positional", "kernels")
           for p in (root / "lengthgen" / d).glob("*.py")]
  name = lambda p: ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
  modules = {name(p): p for p in files}
  graph = {}
  for module, path in modules.items():
    top, inner = _lengthgen_imports(path, modules)
    assert not inner, f"{module} imports {sorted(inner)} inside a function"
    if module.startswith("lengthgen.attention"):
      assert not {n for n in top if n.startswith(("lengthgen.positional", "lengthgen.config"))}
    graph[module] = {n for n in top if n in modules and n != module}

  def visit(module, path):
    for dep in graph[module]:
      assert dep not in path, f"import cycle: {path[path.index(dep):] + [dep]}"
      visit(dep, path + [dep])

  for module in graph:
    visit(module, [module])
  assert "lengthgen.attention.bias" in graph["lengthgen.positional.t5"]


def test_ntk_base_and_yarn_factor():
  assert pe.ntk_scaled_base(10000.0, 128, 4.0) == pytest.approx(10000 * 4 ** (128 / 126))
  assert pe.yarn_attention_factor(4.0) == pytest.approx(0.1 * math.log(4) + 1)
  assert pe.yarn_attention_factor(1.0) == 1.0
  ntk = pe.get("rope_ntk", scale=4.0).inv_frequencies(64)
  rope = pe.rope_inv_frequencies(64)
  assert ntk[0] == rope[0], "NTK keeps the highest frequency"
  assert ntk[-1] == pytest.approx(rope[-1] / 4.0, rel=1e-5), "and divides the lowest by s"
  np.testing.assert_allclose(ntk, pe.rope_inv_frequencies(
      64, base=10000 * 4 ** (64 / 62)), rtol=1e-6)


def test_position_interpolation_divides_frequencies():
  np.testing.assert_allclose(pe.get("rope_pi", scale=4.0).inv_frequencies(16),
                             pe.rope_inv_frequencies(16) / 4.0, rtol=1e-6)


def test_yarn_rotation_ramp_keeps_high_and_interpolates_low_frequencies():
  # ramp="rotations": the paper's formula, linear in the number of rotations r.
  d, s, length = 64, 8.0, 512
  theta = pe.rope_inv_frequencies(d).astype(np.float64)
  got = pe.get("rope_yarn", scale=s, train_length=length, ramp="rotations").inv_frequencies(d)
  r = length * theta / (2 * math.pi)
  high, low = r > 32, r < 1
  assert high.any() and low.any()
  np.testing.assert_allclose(got[high], theta[high], rtol=1e-6)
  np.testing.assert_allclose(got[low], theta[low] / s, rtol=1e-6)
  mid = ~high & ~low
  gamma = (r[mid] - 1) / 31
  np.testing.assert_allclose(got[mid], (1 - gamma) * theta[mid] / s + gamma * theta[mid],
                             rtol=1e-5)
  rot = pe.get("rope_yarn", scale=s, train_length=length, ramp="rotations").rotary(d)
  assert rot.q_scale == pytest.approx((0.1 * math.log(s) + 1) ** 2), (
      "q carries the factor squared: logits scale as with q and k each scaled")


def test_dynamic_ntk_follows_the_length():
  enc = pe.get("rope_ntk", dynamic=True, train_length=8)
  module = enc.rotary(16)
  short = module.apply({}, jnp.arange(8)[None])
  np.testing.assert_allclose(np.asarray(short.cos_BTF),
                             np.cos(np.arange(8)[:, None] * pe.rope_inv_frequencies(16))[None],
                             atol=1e-5)
  long = module.apply({}, jnp.arange(16)[None])
  static = pe.get("rope_ntk", scale=2.0).inv_frequencies(16)
  np.testing.assert_allclose(np.asarray(long.cos_BTF),
                             np.cos(np.arange(16)[:, None] * static)[None], atol=1e-5)


def test_clex_at_initialization_equals_ntk_scaling():
  d, base, t_max = 32, 10000.0, 5
  f = d // 2
  w_up = jax.random.normal(jax.random.key(0), (f, 2 * f))
  zs = solve_log_frequencies(w_up, jnp.zeros((2 * f, f)), head_dim=d, base=base, t_max=t_max)
  for t in range(1, t_max + 1):
    want = pe.rope_inv_frequencies(d, base=pe.ntk_scaled_base(base, d, 2 * t - 1))
    np.testing.assert_allclose(np.exp(np.asarray(zs[t - 1])), want, rtol=2e-4)


def test_clex_learns_away_from_ntk_and_picks_t_from_length():
  d, f = 16, 8
  w_down = jax.random.normal(jax.random.key(1), (2 * f, f)) * 0.1
  w_up = jax.random.normal(jax.random.key(0), (f, 2 * f))
  zs = solve_log_frequencies(w_up, w_down, head_dim=d, base=10000.0, t_max=3)
  ntk3 = pe.rope_inv_frequencies(d, base=pe.ntk_scaled_base(10000.0, d, 5))
  assert not np.allclose(np.exp(np.asarray(zs[2])), ntk3, rtol=1e-3)
  module = pe.get("clex", t_max=3, train_length=4).rotary(d)
  params = module.init(jax.random.key(0), jnp.arange(4)[None])
  rot = module.apply(params, jnp.arange(10)[None])  # L = 10 -> t = ceil(10 / 4) = 3
  want = np.cos(np.arange(10)[:, None] * pe.rope_inv_frequencies(
      d, base=pe.ntk_scaled_base(10000.0, d, 5)))
  np.testing.assert_allclose(np.asarray(rot.cos_BTF)[0], want, atol=1e-4)


def test_rope_relative_at_large_positions_in_bfloat16():
  inv = pe.rope_inv_frequencies(64)
  r = jax.random.split(jax.random.key(0), 2)
  q = jax.random.normal(r[0], (1, 1, 1, 64)).astype(jnp.bfloat16)
  k = jax.random.normal(r[1], (1, 1, 1, 64)).astype(jnp.bfloat16)
  def score(pq, pk):
    rq = pe.apply_rope(q, jnp.asarray([[pq]]), inv).astype(jnp.float32)
    rk = pe.apply_rope(k, jnp.asarray([[pk]]), inv).astype(jnp.float32)
    return float(jnp.sum(rq * rk))
  near = score(7, 0)
  for base in (10**5, 10**5 + 12345):
    assert score(base + 7, base) == pytest.approx(near, abs=0.25 + 0.02 * abs(near))
  assert pe.apply_rope(q, jnp.asarray([[10**5]]), inv).dtype == jnp.bfloat16


def test_fire_normalized_distance_golden():
  x = fire_normalized_distance(jnp.asarray([[600, 5]]), jnp.asarray([[100]]), 0.1, 512.0)
  assert float(x[0, 0, 0]) == pytest.approx(math.log(0.1 * 500 + 1) / math.log(0.1 * 600 + 1),
                                            rel=1e-6)
  assert float(x[0, 1, 0]) == pytest.approx(math.log(0.1 * 95 + 1) / math.log(0.1 * 512 + 1),
                                            rel=1e-6)


def test_abacus_positions_golden():
  vocab = ["<pad>", "+", "="] + [str(i) for i in range(10)]
  ids = {v: i for i, v in enumerate(vocab)}
  tokens = np.asarray([[ids[c] for c in "123+456=579"]])
  np.testing.assert_array_equal(pe.abacus_positions(tokens, vocab)[0],
                                [1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
  rng = np.random.default_rng(0)
  train = pe.sample_positions("abacus", np.repeat(tokens, 4, 0), rng, train=True, vocab=vocab,
                              max_offset=50)
  offsets = train[:, 0] - 1
  assert ((train - offsets[:, None]) * (train > 0) == pe.abacus_positions(tokens, vocab) *
          (train > 0)).all()
  assert (train[:, 3] == 0).all()
  test = pe.sample_positions("abacus", tokens, None, train=False, vocab=vocab)
  np.testing.assert_array_equal(test, pe.abacus_positions(tokens, vocab))


def test_randomized_positions_sorted_unique_shared():
  """The shared subset of ``per_example=False``; per-example draws: test_randomized_positions."""
  rng = np.random.default_rng(0)
  pos = pe.sample_positions("randomized", np.ones((3, 50), np.int32), rng, train=True,
                            vocab=[], max_position=200, per_example=False)
  assert (np.diff(pos, axis=1) > 0).all() and pos.min() >= 0 and pos.max() < 200
  assert (pos == pos[0]).all()
  other = pe.sample_positions("randomized", np.ones((3, 50), np.int32), rng, train=False,
                              vocab=[], max_position=200, per_example=False)
  assert not (other == pos).all()
  with pytest.raises(ValueError, match="exceeds max_position 20"):
    pe.sample_positions("randomized", np.ones((1, 30), np.int32), rng, train=True, vocab=[],
                        max_position=20)


@pytest.mark.parametrize("kind", ["decoder", "encoder"])
@pytest.mark.parametrize("name", sorted(pe.ENCODINGS))
def test_every_encoding_runs_in_decoder_and_encoder(name, kind):
  config = ModelConfig(kind=kind, num_layers=1, width=32, num_heads=2, positional=name)
  model = Transformer(config, vocab_size=13)
  tokens = jax.random.randint(jax.random.key(0), (2, 9), 1, 13)
  params = model.init(jax.random.key(1), tokens)["params"]
  out = model.apply({"params": params}, tokens)
  assert out.shape == (2, 9, 13) and np.isfinite(np.asarray(out)).all()
  grads = jax.grad(lambda p: model.apply({"params": p}, tokens, train=True,
                                         rngs={"dropout": jax.random.key(2)}).sum())(params)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


def test_bad_options_are_errors():
  for name, options, pattern in [("rope", {"layout": "spiral"}, "unknown layout"),
                                 ("rope_pi", {"scale": 0.5}, "scale must be a number >= 1"),
                                 ("rope", {"nonsense": 1}, "bad options"),
                                 ("t5", {"num_buckets": 1}, "num_buckets")]:
    with pytest.raises(ValueError, match=pattern):
      pe.get(name, **options)

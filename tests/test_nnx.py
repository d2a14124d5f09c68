"""lengthgen.nnx: each nnx module equals its linen module on shared (random) weights.

Every comparison takes the linen module's parameter shapes (``jax.eval_shape`` of its
``init``), fills every parameter with a random array (so zero biases or a zero ODE layer hide
nothing), converts with ``from_linen`` and runs both on the same inputs, with ragged
positions (an offset example, padded with position 0) and padded lengths where the module
takes them. float32 outputs and gradients agree to 1e-6 (gradients through the attention to
1e-5); the position table and the T5 bias are compared exactly. Tests that compile more than
one small program, or solve the CLEX ODE, are in the slow tier.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import lengthgen.attention as attn
import lengthgen.nnx as lnnx
import lengthgen.positional as pe
from conftest import ROOT
from lengthgen.attention.layer import AttentionSpec
from lengthgen.attention.layer import MultiHeadAttention as LinenAttention
from lengthgen.positional import abacus, absolute, clex, fire, t5
from lengthgen.positional.rope import rope_angles
from test_architecture import import_graph

# Example 0 is contiguous; example 1 starts at 3 and its last two slots are padding (0).
# B, T, H, D and W are those of the README's example, so its eager operations are compiled
# once for both.
POSITIONS_BT = jnp.array([list(range(10)), list(range(3, 11)) + [0, 0]], jnp.int32)
LENGTHS_B = jnp.array([10, 8], jnp.int32)
HEADS, HEAD_DIM, WIDTH = 4, 16, 64
TOL = dict(rtol=1e-6, atol=1e-6)


def random_like(params, seed: int):
  """Every leaf of ``params`` (arrays or shape structs) as a standard-normal array."""
  r = np.random.default_rng(seed)
  return jax.tree.map(lambda x: jnp.asarray(r.standard_normal(x.shape), x.dtype), params)


def linen_and_nnx(nnx_cls, linen_module, *inputs, seed=0, **kwargs):
  """Random linen params for ``linen_module`` and the nnx module converted from them."""
  shapes = jax.eval_shape(linen_module.init, jax.random.key(0), *inputs, **kwargs)["params"]
  params = random_like(shapes, seed)
  module = nnx_cls.from_linen(linen_module, params)
  chex.assert_trees_all_equal(module.linen_params(), params)  # the way back
  return params, module


def compiled_pair(linen_fn, nnx_fn, module, params):
  """``(linen_fn(params), nnx_fn(module))`` computed in one compiled program (one compile)."""
  return nnx.jit(lambda m, p: (linen_fn(p), nnx_fn(m)))(module, params)


def test_learned_embedding_matches_linen():
  linen = pe.get("learned", max_length=9).embedding(16)
  params, module = linen_and_nnx(lnnx.LearnedEmbedding, linen, POSITIONS_BT)
  positions = POSITIONS_BT.at[1, 9].set(9)  # beyond the table: NaN on both sides
  want = linen.apply({"params": params}, positions)
  got = module(positions)
  assert got.shape == (2, 10, 16) and bool(jnp.isnan(got[1, 9]).all())
  np.testing.assert_array_equal(got, want)


def test_abacus_embedding_matches_linen():
  vocab = list("0123456789") + ["+", "="]
  tokens = np.array([[1, 2, 3, 10, 4, 5, 6, 11, 5, 7, 9], [9, 10, 1, 2, 11, 1, 0, 3, 11, 11, 11]])
  positions = abacus.abacus_sampler(tokens, np.random.default_rng(0), train=True, vocab=vocab,
                                    max_offset=5)
  assert positions[0, 3] == 0 and positions[0, 1] == positions[0, 0] + 1
  linen = pe.get("abacus", max_length=12).embedding(8)
  params, module = linen_and_nnx(lnnx.LearnedEmbedding, linen, positions)
  np.testing.assert_array_equal(module(jnp.asarray(positions)),
                                linen.apply({"params": params}, positions))


@pytest.mark.parametrize("causal", [True, False])
def test_t5_bias_matches_linen(causal):
  linen = pe.get("t5", num_buckets=8, max_distance=16).bias(3, causal=causal)
  params, module = linen_and_nnx(lnnx.RelativeBiasModule, linen, POSITIONS_BT, POSITIONS_BT)
  want = linen.apply({"params": params}, POSITIONS_BT, POSITIONS_BT)
  got = module(POSITIONS_BT, POSITIONS_BT)
  assert isinstance(got, attn.RelativeBias) and got.bidirectional == (not causal)
  np.testing.assert_array_equal(got.dense(POSITIONS_BT, POSITIONS_BT),
                                want.dense(POSITIONS_BT, POSITIONS_BT))


@pytest.mark.parametrize("causal", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_fire_bias_and_gradients_match_linen(causal):
  linen = pe.get("fire", hidden=8).bias(3, causal=causal)
  params, module = linen_and_nnx(lnnx.FireBias, linen, POSITIONS_BT, POSITIONS_BT)
  # A threshold L below the positions in use, so psi(max(L, i)) depends on the query.
  params = {**params, "threshold": jnp.float32(-3.0)}
  lnnx.load_linen_params(module, params)
  r = jax.random.normal(jax.random.key(2), (2, 3, 10, 10))
  linen_bias = lambda p: linen.apply({"params": p}, POSITIONS_BT, POSITIONS_BT)
  nnx_bias = lambda m: m(POSITIONS_BT, POSITIONS_BT)
  (want, want_grads), (got, got_grads) = compiled_pair(
      lambda p: (linen_bias(p), jax.grad(lambda p: jnp.sum(r * linen_bias(p)))(p)),
      lambda m: (nnx_bias(m), nnx.grad(lambda m: jnp.sum(r * nnx_bias(m)))(m)),
      module, params)
  assert got.shape == (2, 3, 10, 10)
  np.testing.assert_allclose(got, want, **TOL)
  np.testing.assert_allclose(nnx_bias(module), got, **TOL)  # eager == compiled
  assert float(jnp.abs(want_grads["threshold"])) > 0 and float(jnp.abs(want_grads["c"])) > 0
  chex.assert_trees_all_close(nnx.to_pure_dict(got_grads), want_grads, **TOL)


def _rope_rotation(head_dim, positions_BT):
  return pe.get("rope").rotation(head_dim, positions_BT)


ATTENTION_CASES = {
    "ssmax_qknorm_t5_rope": dict(normalizer="ssmax", normalizer_options={"init": 0.6},
                                 qk_norm=True),
    "softmax_length_temperature_encoder_alibi_bfloat16": dict(
        length_temperature=True, causal=False, qk_norm=True, dtype="bfloat16"),
    "softplus_reweight_lambda_mask": dict(normalizer="softplus_reweight",
                                          normalizer_options={"power": 5.0}, window=3,
                                          global_tokens=1),
}


def _attention_inputs(name, spec, t5_nnx):
  """The rotation, bias and capped rotation each attention case uses."""
  rotation = _rope_rotation(spec.head_dim, POSITIONS_BT)
  if name.startswith("ssmax"):
    return dict(rotation=rotation, bias=t5_nnx(POSITIONS_BT, POSITIONS_BT))
  if "alibi" in name:
    return dict(bias=attn.AlibiBias(jnp.asarray(pe.alibi_slopes(spec.num_heads)),
                                    bidirectional=True))
  cap = _rope_rotation(spec.head_dim, jnp.full_like(POSITIONS_BT, spec.window))
  return dict(rotation=rotation, cap_rotation=cap)


@pytest.mark.parametrize("name,with_grads", [
    ("ssmax_qknorm_t5_rope", False),
    ("softplus_reweight_lambda_mask", False),
    pytest.param("ssmax_qknorm_t5_rope", True, marks=pytest.mark.slow),
    pytest.param("softmax_length_temperature_encoder_alibi_bfloat16", False,
                 marks=pytest.mark.slow),
])
def test_attention_layer_matches_linen(name, with_grads):
  spec = AttentionSpec(num_heads=HEADS, head_dim=HEAD_DIM, implementation="xla",
                       **ATTENTION_CASES[name])
  x_BTW = jax.random.normal(jax.random.key(3), (2, 10, WIDTH), jnp.dtype(spec.dtype))
  t5_linen = pe.get("t5", num_buckets=8, max_distance=16).bias(HEADS, causal=spec.causal)
  t5_params, t5_nnx = linen_and_nnx(lnnx.RelativeBiasModule, t5_linen, POSITIONS_BT,
                                    POSITIONS_BT, seed=7)
  linen = LinenAttention(spec)
  kwargs = dict(positions_BT=POSITIONS_BT, lengths=LENGTHS_B,
                **_attention_inputs(name, spec, t5_nnx))
  params, module = linen_and_nnx(lnnx.MultiHeadAttention, linen, x_BTW, **kwargs)
  assert not with_grads or isinstance(kwargs["bias"], attn.RelativeBias)
  # The loss for the gradients; padded queries do not count.
  valid_BT1 = (jnp.arange(10) < LENGTHS_B[:, None])[..., None]
  r_BTW = jax.random.normal(jax.random.key(4), x_BTW.shape) * valid_BT1

  def linen_fn(p):
    p_layer, x, table = p
    kw = kwargs
    if with_grads:  # the table enters through the bias spec
      kw = {**kwargs, "bias": t5_linen.apply({"params": {"table": table}}, POSITIONS_BT,
                                             POSITIONS_BT)}
    return linen.apply({"params": p_layer}, x, return_weights=True, **kw)

  def nnx_fn(m):
    (layer, bias_module), x = m
    kw = kwargs
    if with_grads:
      kw = {**kwargs, "bias": bias_module(POSITIONS_BT, POSITIONS_BT)}
    return layer(x, return_weights=True, **kw)

  def and_grads(fn, grad):
    if not with_grads:
      return lambda a: (fn(a), None)
    loss = lambda a: jnp.sum(r_BTW * fn(a)[0])
    return lambda a: (fn(a), grad(loss)(a))

  args = (params, x_BTW, t5_params["table"])
  linen_fn, nnx_fn = and_grads(linen_fn, jax.grad), and_grads(nnx_fn, nnx.grad)
  nnx_args = ((module, t5_nnx), x_BTW)
  if with_grads:  # one compile for both
    (want, want_g), (got, got_g) = compiled_pair(linen_fn, nnx_fn, nnx_args, args)
  else:  # eager: the same operations compiled once for both sides (and for the README)
    (want, want_g), (got, got_g) = linen_fn(args), nnx_fn(nnx_args)
  (want_out, want_w), (got_out, got_w) = want, got
  assert got_out.shape == (2, 10, WIDTH) and got_out.dtype == want_out.dtype == spec.dtype
  if spec.dtype == "float32":
    np.testing.assert_allclose(got_out, want_out, **TOL)
    np.testing.assert_allclose(got_w, want_w, **TOL)
  else:  # nnx.RMSNorm rounds its gain to bfloat16 first, linen's multiplies in float32
    for got, want in ((got_out, want_out), (got_w, want_w)):
      got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
      assert np.linalg.norm(got - want) <= 2e-2 * np.linalg.norm(want)
  assert not np.asarray(got_w)[1, :, :, 8:].any()  # padded keys get no weight
  if with_grads:
    (got_layer, got_t5), got_x = got_g
    assert float(jnp.abs(want_g[0]["ssmax_scale"]).max()) > 0
    chex.assert_trees_all_close(nnx.to_pure_dict(got_layer), want_g[0], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(got_x, want_g[1], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(nnx.to_pure_dict(got_t5)["table"], want_g[2], rtol=1e-5,
                                atol=1e-6)


def _clex_case(t_max, **options):
  linen = pe.get("clex", t_max=t_max, train_length=4, layout="interleaved",
                 **options).rotary(8)
  r = np.random.default_rng(t_max)
  params = {"w_up": jnp.asarray(r.normal(size=(4, 8)), jnp.float32),
            "w_down": jnp.asarray(r.normal(size=(8, 4)) * 0.3, jnp.float32)}
  return linen, params


def _assert_rotations_equal(got, want):
  assert got.layout == want.layout
  np.testing.assert_allclose(got.cos_BTF, want.cos_BTF, **TOL)
  np.testing.assert_allclose(got.sin_BTF, want.sin_BTF, **TOL)
  np.testing.assert_allclose(got.q_scale, want.q_scale, **TOL)


def test_clex_rotary_matches_linen_at_one_scale():
  # t_max=1 skips the ODE solve (z = log theta), so this runs in the default tier; the slow
  # test below solves the learned ODE.
  linen, params = _clex_case(t_max=1, log_scale_queries="clamped",
                             training_positions="multiply")
  module = lnnx.ClexRotary.from_linen(linen, params)
  chex.assert_trees_all_equal(module.linen_params(), params)
  assert module.encoding == pe.get("clex", t_max=1, train_length=4, layout="interleaved",
                                   log_scale_queries="clamped", training_positions="multiply")
  positions = POSITIONS_BT + 5  # L = 16 > train_length: the query scale is log 16 / log 4
  apply = lambda **kw: linen.apply({"params": params}, positions, **kw)
  _assert_rotations_equal(module(positions), apply())
  with pytest.raises(ValueError, match="pass rngs="):
    module(positions, train=True)
  _assert_rotations_equal(module(positions, train=True, rngs=nnx.Rngs(dropout=0)),
                          apply(train=True, rngs={"dropout": jax.random.key(0)}))


@pytest.mark.slow
def test_clex_rotary_matches_linen_through_the_ode():
  linen, params = _clex_case(t_max=3)  # the default modes: sampled positions, "eval" scale
  module = lnnx.ClexRotary.from_linen(linen, params)
  positions = POSITIONS_BT + 2  # L = 13 > 3 * train_length: t = t_max = 3
  apply = lambda x, **kw: linen.apply({"params": params}, x, **kw)
  _assert_rotations_equal(module(positions), apply(positions))
  sampled = jnp.asarray(pe.POSITION_SAMPLERS["clex"](
      np.zeros((2, 10), np.int32), np.random.default_rng(3), train=True, vocab=[], t_max=3))
  _assert_rotations_equal(module(sampled, train=True), apply(sampled, train=True))
  # "multiply" draws t (from the call's key, else the module's stream) and rotates
  # positions * t.
  linen, params = _clex_case(t_max=3, training_positions="multiply")
  module = lnnx.ClexRotary.from_linen(linen, params, rngs=nnx.Rngs(dropout=1))
  zs = clex.solve_log_frequencies(params["w_up"], params["w_down"], head_dim=8, base=10000.0,
                                  t_max=3)
  candidates = [rope_angles(POSITIONS_BT * t, jnp.exp(zs[t - 1]))[0] for t in (1, 2, 3)]
  key = jax.random.key(5)
  t = int(jax.random.randint(key, (), 1, 4))
  np.testing.assert_allclose(module(POSITIONS_BT, train=True, rngs=key).cos_BTF,
                             candidates[t - 1], **TOL)
  cos = module(POSITIONS_BT, train=True).cos_BTF
  assert any(np.allclose(cos, c, **TOL) for c in candidates)


def _linen_defaults(cls):
  return {n: f.default for n, f in cls.__dataclass_fields__.items()
          if f.default is not dataclasses.MISSING and n not in ("parent", "name")}


@pytest.mark.parametrize("nnx_cls,linen_defaults", [
    (lnnx.RelativeBiasModule, _linen_defaults(t5.RelativeBiasModule)),
    (lnnx.FireBias, _linen_defaults(fire.FireBias)),
])
def test_nnx_defaults_are_the_linen_ones(nnx_cls, linen_defaults):
  params = inspect.signature(nnx_cls.__init__).parameters
  assert linen_defaults
  assert {n: params[n].default for n in linen_defaults} == linen_defaults


@pytest.mark.slow
@pytest.mark.parametrize("name", ["learned", "t5", "fire", "clex", "attention"])
def test_fresh_init_matches_linen_where_linen_init_is_deterministic(name):
  rngs = nnx.Rngs(0)
  pos = POSITIONS_BT
  spec = AttentionSpec(num_heads=2, head_dim=4, normalizer="ssmax", qk_norm=True,
                       normalizer_options={"init": 0.25})
  clex_encoding = pe.get("clex", t_max=1, train_length=4)
  linen, inputs, module = {
      "learned": lambda: (absolute.LearnedEmbedding(9, 6), (pos,),
                          lnnx.LearnedEmbedding(9, 6, rngs=rngs)),
      "t5": lambda: (t5.RelativeBiasModule(2, False), (pos, pos),
                     lnnx.RelativeBiasModule(2, False, rngs=rngs)),
      "fire": lambda: (fire.FireBias(2, True, hidden=4), (pos, pos),
                       lnnx.FireBias(2, True, hidden=4, rngs=rngs)),
      "clex": lambda: (clex_encoding.rotary(8), (pos,),
                       lnnx.ClexRotary(clex_encoding, 8, rngs=rngs)),
      "attention": lambda: (LinenAttention(spec), (jnp.ones((2, 10, 12)),),
                            lnnx.MultiHeadAttention(spec, 12, rngs=rngs)),
  }[name]()
  kwargs = {"positions_BT": pos} if name == "attention" else {}
  inits = [linen.init(jax.random.key(k), *inputs, **kwargs)["params"] for k in (0, 1)]
  got = module.linen_params()
  chex.assert_trees_all_equal_shapes_and_dtypes(got, inits[0])
  fixed = jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), *inits)
  assert any(jax.tree.leaves(fixed)) or name in ("learned", "t5")

  def check(got_leaf, want_leaf, deterministic):
    if deterministic:
      np.testing.assert_array_equal(got_leaf, want_leaf)
    elif np.size(want_leaf) >= 16:  # random: the same scale (normal(0.02), lecun-normal)
      assert 0.5 < float(np.std(got_leaf) / np.std(want_leaf)) < 2.0

  jax.tree.map(check, got, inits[0], fixed)
  if name == "attention":
    np.testing.assert_array_equal(got["ssmax_scale"], [0.25, 0.25])


def test_from_linen_names_what_does_not_fit():
  linen = pe.get("fire", hidden=8).bias(3, causal=True)
  params = random_like(jax.eval_shape(linen.init, jax.random.key(0), POSITIONS_BT,
                                      POSITIONS_BT)["params"], 0)
  with pytest.raises(ValueError, match=r"FireBias: .*hidden/kernel has shape \(1, 8\), the "
                                       r"module expects \(1, 4\)"):
    lnnx.FireBias.from_linen(fire.FireBias(3, hidden=4), params)
  with pytest.raises(ValueError, match=r"missing \['c'\], unexpected \['cc'\]"):
    lnnx.FireBias.from_linen(linen, {**{k: v for k, v in params.items() if k != "c"},
                                     "cc": params["c"]})
  with pytest.raises(TypeError, match="FireBias"):
    lnnx.RelativeBiasModule.from_linen(linen, params)
  with pytest.raises(ValueError, match="no query"):
    lnnx.MultiHeadAttention.from_linen(LinenAttention(AttentionSpec(2, 4)), params)
  t5_spec = AttentionSpec(2, 4, score_scale=1.0, use_bias=False, init="t5")
  with pytest.raises(ValueError, match=r"pre_ln block's attention only .*score_scale=1.0"):
    lnnx.MultiHeadAttention.from_linen(LinenAttention(t5_spec), params)
  # The whole variables dict is accepted as well as its "params".
  module = lnnx.FireBias.from_linen(linen, {"params": params})
  chex.assert_trees_all_equal(module.linen_params(), params)


def test_positional_and_attention_do_not_import_nnx():
  graph = import_graph()
  todo = [m for m in graph if m.startswith(("lengthgen.positional", "lengthgen.attention"))]
  seen = set()
  while todo:
    node = todo.pop()
    if node not in seen:
      seen.add(node)
      todo.extend(graph.get(node, ()))
  assert {"lengthgen.attention.layer", "lengthgen.positional.clex"} <= seen
  assert not [m for m in seen if m == "lengthgen.nnx" or m.startswith("lengthgen.nnx.")]


def test_readme_nnx_example_runs(capsys):
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  assert "\n### With flax.nnx\n" in readme, "README.md lost its 'With flax.nnx' subsection"
  section = readme.split("\n### With flax.nnx\n", 1)[1].split("\n## ", 1)[0]
  (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
  exec(compile(block, "README.md", "exec"), {})  # pylint: disable=exec-used
  assert capsys.readouterr().out.splitlines() == ["True", "(2, 10, 64)"]


@pytest.mark.slow
def test_package_docstring_example_runs():
  doc = lnnx.__doc__.split("width.\n", 1)[1].split("\nConverters", 1)[0]
  namespace = {}
  exec(compile(inspect.cleandoc(doc), "lengthgen/nnx/__init__.py", "exec"), namespace)  # pylint: disable=exec-used
  assert namespace["y_BTW"].shape == (2, 10, 32)

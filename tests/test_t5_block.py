"""``model.block="t5"``: the HuggingFace T5 decoder block; ``pre_ln`` stays as it was.

T5's form (``T5LayerNorm``, ``T5Attention``, ``T5DenseActDense``, ``_init_weights`` with
factor 1, the tied readout on ``d_model**-0.5 * h``) is checked against numpy computations
with the modules' own parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from lengthgen import build, data, train
from lengthgen.attention.bias import RelativeBias
from lengthgen.attention.layer import AttentionSpec, MultiHeadAttention, t5_projection_stds
from lengthgen.config import ConfigError, ExperimentConfig, ModelConfig
from lengthgen.model import Transformer

TOKENS_BT = (jnp.arange(8)[None] * 3 + 1) % 11  # [[1, 4, 7, 10, 2, 5, 8, 0]]


def _paths(tree) -> dict[str, tuple[int, ...]]:
  """'block_0/attention/query/kernel' -> shape, for every leaf."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {"/".join(k.key for k in path): tuple(v.shape) for path, v in flat}


def _init(config: ModelConfig, vocab_size: int = 11, tokens_BT=TOKENS_BT, seed: int = 0):
  model = Transformer(config, vocab_size=vocab_size)
  return model, model.init(jax.random.key(seed), tokens_BT)["params"]


# pre_ln (the default) -----------------------------------------------------------------------

def _pre_ln_block_shapes(i: int, w: int = 32, h: int = 4, d: int = 8, hidden: int = 128):
  p = f"block_{i}/"
  out = {p + f"attention/{n}/{leaf}": shape for n in ("query", "key", "value")
         for leaf, shape in (("kernel", (w, h, d)), ("bias", (h, d)))}
  out.update({p + "attention/out/kernel": (h, d, w), p + "attention/out/bias": (w,),
              p + "mlp/up/kernel": (w, hidden), p + "mlp/up/bias": (hidden,),
              p + "mlp/down/kernel": (hidden, w), p + "mlp/down/bias": (w,)})
  out.update({p + f"{ln}/{leaf}": (w,) for ln in ("ln_attention", "ln_mlp")
              for leaf in ("scale", "bias")})
  return out


# Recorded from the model before ModelConfig.block existed (same seed, config and tokens).
PRE_LN_SHAPES = {**_pre_ln_block_shapes(0), **_pre_ln_block_shapes(1),
                 "embed/embedding": (11, 32), "head/logits/kernel": (32, 11),
                 "head/logits/bias": (11,), "ln_final/scale": (32,), "ln_final/bias": (32,),
                 "position_bias/table": (4, 32)}
PRE_LN_SUM_OF_SQUARES = 739.8514409479011
PRE_LN_LAST_LOGITS = [0.37260517477989197, -1.0104939937591553, 1.0799962282180786,
                      -0.17826950550079346, 1.110220193862915, 0.1962072104215622,
                      0.3909968435764313, 1.187018632888794, -2.3894338607788086,
                      -0.33273983001708984, -2.530555248260498]
PRE_LN_LOGIT_SUM = -28.71907828003168
# The pointer head with qk_norm and rope, recorded the same way.
POINTER_LAST_LOGITS = [0.038678914308547974, 0.42752352356910706, 1.4174625873565674,
                       -0.18504111468791962, 1.0877301692962646, 1.154076099395752,
                       -0.0023514628410339355, 1.3898459672927856, -0.42164814472198486,
                       -0.5960477590560913, 0.2337953746318817]


@pytest.mark.parametrize("block", [None, "pre_ln"])
def test_pre_ln_params_and_logits_are_unchanged(block):
  """The default block keeps the parameter tree (old checkpoints load) and the outputs."""
  fields = {} if block is None else {"block": block}
  model, params = _init(ModelConfig(num_layers=2, width=32, num_heads=4, positional="t5",
                                    **fields))
  assert _paths(params) == PRE_LN_SHAPES
  sum_of_squares = sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(params))
  np.testing.assert_allclose(sum_of_squares, PRE_LN_SUM_OF_SQUARES, rtol=1e-6)
  logits = np.asarray(model.apply({"params": params}, TOKENS_BT))
  np.testing.assert_allclose(logits[0, -1], PRE_LN_LAST_LOGITS, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits.astype(np.float64).sum(), PRE_LN_LOGIT_SUM, atol=1e-3)


def test_pre_ln_pointer_head_is_unchanged():
  model, params = _init(ModelConfig(num_layers=2, width=32, num_heads=4, positional="rope",
                                    head="pointer", qk_norm=True))
  logits = np.asarray(model.apply({"params": params}, TOKENS_BT))
  np.testing.assert_allclose(logits[0, -1], POINTER_LAST_LOGITS, rtol=1e-5, atol=1e-5)


# t5: parameters and initialization ----------------------------------------------------------

def test_t5_has_no_biases_and_no_head_params():
  _, params = _init(ModelConfig(num_layers=2, width=32, num_heads=4, positional="t5",
                                block="t5"))
  p = "block_{}/"
  want = {"embed/embedding": (11, 32), "ln_final/scale": (32,), "position_bias/table": (4, 32)}
  for i in range(2):
    want.update({p.format(i) + f"attention/{n}/kernel": (32, 4, 8)
                 for n in ("query", "key", "value")})
    want.update({p.format(i) + "attention/out/kernel": (4, 8, 32),
                 p.format(i) + "mlp/up/kernel": (32, 128),
                 p.format(i) + "mlp/down/kernel": (128, 32),
                 p.format(i) + "ln_attention/scale": (32,), p.format(i) + "ln_mlp/scale": (32,)})
  assert _paths(params) == want


def test_t5_init_follows_hf_init_weights():
  """Each weight's std is HF ``_init_weights``' (factor 1) within sampling error."""
  w, h, vocab = 128, 8, 64
  d, hidden = w // h, 4 * w
  config = ModelConfig(num_layers=1, width=w, num_heads=h, positional="t5", block="t5")
  _, params = _init(config, vocab_size=vocab, tokens_BT=jnp.zeros((1, 4), jnp.int32))
  attention = params["block_0"]["attention"]
  stds = t5_projection_stds(w, h, d)
  assert stds == pytest.approx({"query": (w * d) ** -0.5, "key": w ** -0.5,
                                "value": w ** -0.5, "out": (h * d) ** -0.5})
  got = {n: attention[n]["kernel"] for n in ("query", "key", "value", "out")}
  want = dict(stds)
  got.update(up=params["block_0"]["mlp"]["up"]["kernel"],
             down=params["block_0"]["mlp"]["down"]["kernel"],
             embed=params["embed"]["embedding"], table=params["position_bias"]["table"])
  want.update(up=w ** -0.5, down=hidden ** -0.5, embed=1.0, table=w ** -0.5)
  for name, array in got.items():
    array = np.asarray(array, np.float64)
    # the std of n normal draws is off by about std / sqrt(2 n): 4.4% for the [8, 32] table
    tol = 5 / np.sqrt(2 * array.size)
    assert abs(array.std() / want[name] - 1) < tol, (name, array.std(), want[name])
    assert abs(array.mean()) < 5 * want[name] / np.sqrt(array.size), (name, array.mean())
  # (pre_ln's table, normal(0.02), is pinned by test_pre_ln_params_and_logits_are_unchanged)
  for norm in ("ln_attention", "ln_mlp"):
    np.testing.assert_array_equal(params["block_0"][norm]["scale"], np.ones(w))
  np.testing.assert_array_equal(params["ln_final"]["scale"], np.ones(w))


# t5: numerics against numpy -----------------------------------------------------------------

def _rms_norm(x, scale):
  x = np.asarray(x, np.float64)
  return x / np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True) + 1e-6) * np.asarray(scale)


def _softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  e = np.exp(x)
  return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def t5_run():
  """A 1-layer t5-block model with randomized gains and an embedding of mean 3 (so RMSNorm
  and LayerNorm differ), its parameters and its captured intermediates."""
  config = ModelConfig(num_layers=1, width=32, num_heads=4, positional="t5", block="t5")
  model, params = _init(config)
  rng = np.random.default_rng(0)
  params = jax.tree.map(np.asarray, params)
  params["embed"]["embedding"] = params["embed"]["embedding"] + 3.0
  for module in (params["block_0"]["ln_attention"], params["block_0"]["ln_mlp"],
                 params["ln_final"]):
    module["scale"] = rng.uniform(0.5, 1.5, 32).astype(np.float32)
  logits, state = model.apply({"params": params}, TOKENS_BT, capture_intermediates=True)
  return config, params, np.asarray(logits), state["intermediates"]


def test_t5_norm_is_rms_norm(t5_run):
  _, params, _, inter = t5_run
  x_BTW = params["embed"]["embedding"][np.asarray(TOKENS_BT)]
  got = inter["block_0"]["ln_attention"]["__call__"][0]
  want = _rms_norm(x_BTW, params["block_0"]["ln_attention"]["scale"])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  centered = x_BTW - x_BTW.mean(-1, keepdims=True)  # what LayerNorm would have normalized
  assert np.abs(_rms_norm(centered, params["block_0"]["ln_attention"]["scale"]) - want).max() > 0.5


def test_t5_attention_scores_are_unscaled(t5_run):
  """out = softmax(q k^T + bias) v W_o, no 1/sqrt(D), with the layer's own parameters."""
  _, params, _, inter = t5_run
  a = params["block_0"]["attention"]
  x_BTW = np.asarray(inter["block_0"]["ln_attention"]["__call__"][0], np.float64)
  q, k, v = (np.einsum("btw,whd->bthd", x_BTW, np.asarray(a[n]["kernel"], np.float64))
             for n in ("query", "key", "value"))
  positions = jnp.arange(8)[None]
  bias_BHTS = np.asarray(RelativeBias(jnp.asarray(params["position_bias"]["table"]),
                                      bidirectional=False).dense(positions, positions))
  t = x_BTW.shape[1]
  causal = np.tril(np.ones((t, t), bool))

  def attend(scale):
    scores = np.einsum("bthd,bshd->bhts", q, k) * scale + bias_BHTS
    weights = _softmax(np.where(causal, scores, -np.inf))
    heads = np.einsum("bhts,bshd->bthd", weights, v)
    return np.einsum("bthd,hdw->btw", heads, np.asarray(a["out"]["kernel"], np.float64))

  got = np.asarray(inter["block_0"]["attention"]["__call__"][0][0])
  np.testing.assert_allclose(got, attend(1.0), rtol=1e-4, atol=1e-5)
  assert np.abs(got - attend(8 ** -0.5)).max() > 1e-2  # the default scale would differ


def test_t5_head_is_the_tied_embedding(t5_run):
  _, params, logits, inter = t5_run
  h_BTW = np.asarray(inter["ln_final"]["__call__"][0], np.float64)
  embedding_VW = np.asarray(params["embed"]["embedding"], np.float64)
  np.testing.assert_allclose(logits, (32 ** -0.5 * h_BTW) @ embedding_VW.T, rtol=1e-5,
                             atol=1e-4)
  assert logits.dtype == np.float32


def test_t5_mlp_is_relu_without_biases(t5_run):
  _, params, _, inter = t5_run
  m = params["block_0"]["mlp"]
  x = np.asarray(inter["block_0"]["ln_mlp"]["__call__"][0], np.float64)
  want = np.maximum(x @ np.asarray(m["up"]["kernel"], np.float64), 0) @ np.asarray(
      m["down"]["kernel"], np.float64)
  np.testing.assert_allclose(inter["block_0"]["mlp"]["__call__"][0], want, rtol=1e-4,
                             atol=1e-5)


def test_attention_spec_score_scale_is_passed_through():
  """The layer alone: score_scale=2 is 2 q.k, None is q.k / sqrt(D)."""
  x_BTW = jax.random.normal(jax.random.key(1), (1, 5, 16))
  positions = jnp.arange(5)[None]
  outs = {}
  for scale in (None, 2.0, 0.25 ** 0.5):  # D = 4: None == 0.5
    layer = MultiHeadAttention(AttentionSpec(num_heads=4, head_dim=4, score_scale=scale))
    variables = layer.init(jax.random.key(0), x_BTW, positions_BT=positions)
    outs[scale] = np.asarray(layer.apply(variables, x_BTW, positions_BT=positions)[0])
  np.testing.assert_allclose(outs[None], outs[0.25 ** 0.5], rtol=1e-6, atol=1e-6)
  assert np.abs(outs[None] - outs[2.0]).max() > 1e-3
  with pytest.raises(ValueError, match="AttentionSpec.init: unknown value 'xavier'"):
    AttentionSpec(num_heads=4, head_dim=4, init="xavier")


# t5: the rest of the model keeps working ----------------------------------------------------

@pytest.mark.parametrize("fields", [
    dict(positional="rope", window=3, global_tokens=1, qk_norm=True),
    dict(positional="alibi", length_temperature=True),
    dict(positional="t5", positional_options={"share_bias": False}, kind="encoder"),
    dict(positional="nope", normalizer="ssmax", dtype="bfloat16"),
    dict(positional="learned", normalizer="softplus"),
])
def test_t5_block_with_other_options(fields):
  """Runs, stays causal (decoder), returns rows of weights that sum to 1."""
  config = ModelConfig(num_layers=2, width=32, num_heads=4, block="t5", **fields)
  model, params = _init(config)
  logits, weights = model.apply({"params": params}, TOKENS_BT, return_attention=True)
  assert logits.shape == (1, 8, 11) and np.isfinite(np.asarray(logits)).all()
  assert weights.shape == (2, 1, 4, 8, 8)
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-2)
  if config.causal:
    changed = model.apply({"params": params}, TOKENS_BT.at[0, -1].set(3))
    np.testing.assert_array_equal(np.asarray(changed)[:, :-1], np.asarray(logits)[:, :-1])


def test_t5_dropout_applies_in_training():
  config = ModelConfig(num_layers=1, width=32, num_heads=4, block="t5", dropout=0.3)
  model, params = _init(config)
  evaluated = model.apply({"params": params}, TOKENS_BT)
  trained = model.apply({"params": params}, TOKENS_BT, train=True,
                        rngs={"dropout": jax.random.key(1)})
  assert np.isfinite(np.asarray(trained)).all()
  assert np.abs(np.asarray(trained - evaluated)).max() > 1e-3


def test_t5_training_reduces_the_loss():
  config = tiny_config(model=dict(num_layers=1, width=32, num_heads=2, block="t5",
                                  positional="t5"))
  setup = build.setup(config)
  tx = build.make_optimizer(config.train)
  inputs = data.training_inputs(setup, 0)
  state = build.init_state(setup.model, tx, inputs, 0)
  key = jax.random.key(0)
  step = jax.jit(lambda s, i: train.train_step(s, i, key, setup=setup, tx=tx))
  losses = []
  for _ in range(6):
    state, metrics = step(state, inputs)
    losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


# validation ---------------------------------------------------------------------------------

def test_unknown_block_names_the_choices():
  with pytest.raises(ConfigError, match=r"config.model.block: unknown value 't6'; valid "
                                        r"values: pre_ln, post_ln, t5"):
    ExperimentConfig.from_dict({"model": {"block": "t6"}})


def test_t5_block_refuses_untied_heads():
  with pytest.raises(ConfigError, match=r"config.model.head: block='t5' ties .* head='vocab' "
                                        r"only; got head='pointer'"):
    ExperimentConfig.from_dict({"model": {"block": "t5", "head": "pointer"}})
  with pytest.raises(ConfigError, match=r"config.multitask_head: block='t5' has one tied "
                                        r"readout"):
    ExperimentConfig.from_dict({"model": {"block": "t5"}, "hints": [{"name": "reverse"}]})
  ExperimentConfig.from_dict({"model": {"block": "t5"}, "hints": [{"name": "reverse"}],
                              "multitask_head": "indicator"})
  # The model itself, without a config file, says the same.
  with pytest.raises(ValueError, match=r"supports head='vocab' with one readout \(num_tasks=1\)"
                                       r" only; got head='pointer', num_tasks=1"):
    _init(ModelConfig(num_layers=1, width=32, num_heads=4, block="t5", head="pointer"))
  with pytest.raises(ValueError, match=r"got head='vocab', num_tasks=2"):
    Transformer(ModelConfig(num_layers=1, width=32, num_heads=4, block="t5"), vocab_size=11,
                num_tasks=2).init(jax.random.key(0), TOKENS_BT, task_ids_B=jnp.zeros(1, int))

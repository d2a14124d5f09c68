"""``model.block="post_ln"``: the post-norm encoder of Deletang et al. 2023 / Ruoss et al. 2023.

The whole forward pass of a small model (sqrt(W)-scaled embedding plus sinusoidal positions,
bias-free attention with q.k / sqrt(D), x = LN(x + attention(x)), a ReLU MLP with biases,
x = LN(x + mlp(x)), no final norm, the untied head) is recomputed in numpy from the model's
own parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import load_config_file, tiny_config
from lengthgen import train
from lengthgen.build import load_config
from lengthgen.config import ConfigError, ExperimentConfig, ModelConfig
from lengthgen.model import POST_LN_EMBED_STD, Transformer
from lengthgen.positional.absolute import sinusoidal_table

TOKENS_BT = (jnp.arange(9)[None] * 4 + 2) % 7  # one example of 9 tokens, vocabulary 7
W, H, D, HIDDEN = 16, 2, 8, 64


def _config(**fields) -> ModelConfig:
  base = dict(kind="encoder", num_layers=2, width=W, num_heads=H, positional="sinusoidal",
              block="post_ln")
  return ModelConfig(**{**base, **fields})


def _paths(tree) -> set[str]:
  return {"/".join(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _layer_norm(x, scale, bias):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-5) * scale + bias


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _numpy_forward(params, tokens_BT, num_layers):
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  tokens = np.asarray(tokens_BT)
  t = tokens.shape[1]
  x = p["embed"]["embedding"][tokens] * np.sqrt(W)
  x = x + np.asarray(sinusoidal_table(jnp.arange(t), W), np.float64)[None]
  for i in range(num_layers):
    b = p[f"block_{i}"]
    a = b["attention"]
    q, k, v = (np.einsum("btw,whd->bthd", x, a[n]["kernel"]) for n in ("query", "key", "value"))
    weights = _softmax(np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(D))  # non-causal
    h = np.einsum("bthd,hdw->btw", np.einsum("bhts,bshd->bthd", weights, v), a["out"]["kernel"])
    x = _layer_norm(x + h, b["ln_attention"]["scale"], b["ln_attention"]["bias"])
    m = b["mlp"]
    up = np.maximum(x @ m["up"]["kernel"] + m["up"]["bias"], 0.0)
    x = _layer_norm(x + up @ m["down"]["kernel"] + m["down"]["bias"],
                    b["ln_mlp"]["scale"], b["ln_mlp"]["bias"])
  return x @ p["head"]["logits"]["kernel"] + p["head"]["logits"]["bias"]


@pytest.fixture(scope="module")
def post_ln_run():
  model = Transformer(_config(), vocab_size=7)
  params = jax.tree.map(np.asarray, model.init(jax.random.key(0), TOKENS_BT)["params"])
  rng = np.random.default_rng(1)
  for i in range(2):  # non-trivial gains and offsets, so a misplaced norm shows
    for ln in ("ln_attention", "ln_mlp"):
      params[f"block_{i}"][ln] = {"scale": rng.uniform(0.5, 1.5, W).astype(np.float32),
                                  "bias": rng.normal(0, 0.3, W).astype(np.float32)}
  return model, params


def test_post_ln_forward_matches_numpy(post_ln_run):
  model, params = post_ln_run
  got = np.asarray(model.apply({"params": params}, TOKENS_BT))
  np.testing.assert_allclose(got, _numpy_forward(params, TOKENS_BT, 2), rtol=1e-4, atol=1e-4)


def test_post_ln_differs_from_the_pre_norm_order(post_ln_run):
  """A pre_ln model of the same shape has another parameter tree (a final norm, attention
  biases) and other logits."""
  model, params = post_ln_run
  got = np.asarray(model.apply({"params": params}, TOKENS_BT))
  pre = Transformer(_config(block="pre_ln"), vocab_size=7)
  pre_params = pre.init(jax.random.key(0), TOKENS_BT)["params"]
  assert _paths(pre_params) != _paths(params)
  assert not np.allclose(got, np.asarray(pre.apply({"params": pre_params}, TOKENS_BT)),
                         atol=1e-2)


def test_post_ln_parameters():
  params = Transformer(_config(), vocab_size=7).init(jax.random.key(0), TOKENS_BT)["params"]
  paths = _paths(params)
  assert not any(p.startswith("ln_final") for p in paths)          # no final norm
  assert not any("/attention/" in p and p.endswith("bias") for p in paths)  # bias-free attention
  assert {"block_0/mlp/up/bias", "block_0/mlp/down/bias", "head/logits/bias"} <= paths
  embedding = np.asarray(params["embed"]["embedding"])
  assert np.abs(embedding).max() <= 2 * POST_LN_EMBED_STD + 1e-7    # truncated at 2 std
  assert 0.5 * POST_LN_EMBED_STD < embedding.std() < POST_LN_EMBED_STD


def test_post_ln_has_no_dropout_inside_the_mlp():
  """With dropout on, training-mode outputs differ from eval; the MLP alone stays deterministic."""
  from lengthgen.model import Mlp
  mlp = Mlp(HIDDEN, dropout=0.9, block="post_ln")
  x = jnp.ones((1, 3, W))
  params = mlp.init(jax.random.key(0), x, train=False)
  run = lambda seed: mlp.apply(params, x, train=True, rngs={"dropout": jax.random.key(seed)})
  np.testing.assert_array_equal(run(0), mlp.apply(params, x, train=False))
  model = Transformer(_config(dropout=0.5), vocab_size=7)
  p = model.init(jax.random.key(0), TOKENS_BT)
  a = model.apply(p, TOKENS_BT, train=True, rngs={"dropout": jax.random.key(1)})
  assert not np.allclose(a, model.apply(p, TOKENS_BT))


def test_post_ln_trains_an_encoder_task(tmp_path):
  """A few steps of a Chomsky encoder task through the training loop, at a constant rate."""
  d = load_config_file("chomsky").get_config("even_pairs,tiny").to_dict()
  d["model"].update(block="post_ln", positional="rope", dropout=0.1)
  d["train"].update(steps=3, lr_schedule="constant", warmup_steps=0, checkpoint_every=3)
  _, params = train.train(load_config(d), str(tmp_path), tensorboard=False)
  assert all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree.leaves(params))
  assert "ln_final" not in params


def test_bad_task_options_name_the_field():
  with pytest.raises(ConfigError, match=r"^config.task_options: task 'even_pairs': bad options"):
    tiny_config(task="even_pairs")  # tiny_config's copy options do not fit even_pairs


def test_unknown_block_is_refused():
  with pytest.raises(ConfigError, match=r"config.model.block: unknown value 'post'; valid "
                                        r"values: pre_ln, post_ln, t5"):
    ExperimentConfig.from_dict({"model": {"block": "post"}})


@pytest.mark.parametrize("warmup", [0, 4])
def test_constant_learning_rate_schedule(warmup):
  from lengthgen import build
  t = tiny_config(train=dict(steps=20, warmup_steps=warmup, lr_schedule="constant",
                             learning_rate=1e-3)).train
  schedule = build.learning_rate_schedule(t)
  rates = np.array([float(schedule(i)) for i in range(20)])
  np.testing.assert_allclose(rates[warmup:], 1e-3, rtol=1e-6)
  if warmup:
    np.testing.assert_allclose(rates[:warmup], 1e-3 * np.arange(warmup) / warmup, rtol=1e-6)
  with pytest.raises(ConfigError, match=r"config.train.lr_schedule: unknown value 'linear'; "
                                        r"valid values: cosine, constant"):
    tiny_config(train=dict(lr_schedule="linear"))

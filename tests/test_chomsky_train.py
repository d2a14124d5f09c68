"""A tiny encoder trains on every Chomsky task, and the protocol config runs end to end."""

from __future__ import annotations

import functools
import json

import jax
import numpy as np
import pytest

from conftest import load_config_file
from lengthgen import build, data, train
from lengthgen.build import load_config
from lengthgen.tasks.chomsky import CHOMSKY_TASKS


def _chomsky_config():
  return load_config_file("chomsky")


def test_protocol_config():
  config = load_config(_chomsky_config().get_config("bucket_sort"))
  assert config.task == "bucket_sort" and config.model.kind == "encoder"
  assert (config.train.min_length, config.train.max_length) == (1, 40)
  assert (config.eval.min_length, config.eval.max_length, config.eval.num_examples) == (1, 500,
                                                                                        512)
  assert config.eval.score_metric == "token_accuracy"
  with pytest.raises(ValueError, match="unknown preset 'sort' of chomsky.py.*bucket_sort"):
    _chomsky_config().get_config("sort")


FAST = ("parity_check",)   # the rest are slow: ~4 s of compiling each


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(CHOMSKY_TASKS)])
def test_tiny_encoder_fits_a_fixed_batch(name):
  d = _chomsky_config().get_config(f"{name},tiny").to_dict()
  d["train"].update(batch_size=16, learning_rate=3e-3, warmup_steps=0, steps=30)
  config = load_config(d)
  setup = build.setup(config)
  tx = build.make_optimizer(config.train)
  inputs = data.training_inputs(setup, step=0)
  state = build.init_state(setup.model, tx, inputs, seed=0)
  step = jax.jit(functools.partial(train.train_step, setup=setup, tx=tx))
  key = jax.random.key(0)
  losses = []
  for _ in range(30):
    state, metrics = step(state, inputs, key)
    losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.integration
def test_tiny_protocol_run_end_to_end(tmp_path):
  config = load_config(_chomsky_config().get_config("binary_addition,tiny"))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["model"] == "encoder" and saved["task"] == "binary_addition"
  assert [r["length"] for r in saved["eval"]] == list(range(1, 11))
  beyond = [r["token_accuracy"] for r in saved["eval"] if r["length"] > 6]
  assert saved["score"]["metric"] == "token_accuracy"
  assert saved["score"]["out_of_distribution"] == pytest.approx(np.mean(beyond))
  assert results["score"] == saved["score"]

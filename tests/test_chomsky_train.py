"""A tiny encoder trains on every Chomsky task, and the protocol config runs end to end."""

from __future__ import annotations

import functools
import importlib.util
import json
import os

import jax
import numpy as np
import pytest

from lengthgen import data, train
from lengthgen.config import ExperimentConfig
from lengthgen.tasks.chomsky import CHOMSKY_TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _chomsky_config():
  path = os.path.join(ROOT, "experiments", "configs", "chomsky.py")
  spec = importlib.util.spec_from_file_location("chomsky_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_protocol_config():
  config = ExperimentConfig.from_dict(_chomsky_config().get_config("bucket_sort"))
  assert config.task == "bucket_sort" and config.model.kind == "encoder"
  assert (config.train.min_length, config.train.max_length) == (1, 40)
  assert (config.eval.min_length, config.eval.max_length, config.eval.num_examples) == (1, 500,
                                                                                        512)
  assert config.eval.score_metric == "token_accuracy"
  with pytest.raises(ValueError, match="unknown task or preset 'sort'.*bucket_sort"):
    _chomsky_config().get_config("sort")


FAST = ("parity_check", "stack_manipulation")   # the rest are slow: ~4 s of compiling each


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(CHOMSKY_TASKS)])
def test_tiny_encoder_fits_a_fixed_batch(name):
  d = _chomsky_config().get_config(f"{name},tiny").to_dict()
  d["train"].update(batch_size=16, learning_rate=3e-3, warmup_steps=0, steps=30)
  config = ExperimentConfig.from_dict(d)
  task, model = train.build(config)
  tx = train.make_optimizer(config.train)
  inputs = data.training_inputs(config, task, step=0)
  state = train.init_state(model, tx, inputs, seed=0)
  step = jax.jit(functools.partial(train.train_step, model=model, tx=tx))
  key = jax.random.key(0)
  losses = []
  for _ in range(30):
    state, metrics = step(state, inputs, key)
    losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all()
  assert losses[-1] < 0.8 * losses[0], losses


def test_tiny_protocol_run_end_to_end(tmp_path):
  config = ExperimentConfig.from_dict(_chomsky_config().get_config("binary_addition,tiny"))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  saved = json.load(open(tmp_path / "results.json"))
  assert saved["model"] == "encoder" and saved["task"] == "binary_addition"
  assert [r["length"] for r in saved["eval"]] == list(range(1, 13))
  beyond = [r["token_accuracy"] for r in saved["eval"] if r["length"] > 5]
  assert saved["score"]["metric"] == "token_accuracy"
  assert saved["score"]["out_of_distribution"] == pytest.approx(np.mean(beyond))
  assert results["score"] == saved["score"]

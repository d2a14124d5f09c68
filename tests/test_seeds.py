"""num_seeds: N models trained at once (vmap) equal N separately trained models."""

from __future__ import annotations

import dataclasses

import chex
import jax
import pytest
import numpy as np

from lengthgen import train
from conftest import tiny_config


@pytest.mark.slow  # the same property is checked in the default run by test_multitask.py::test_hint_run_with_vmapped_seeds_equals_separate_seeds
# and, bitwise, the demo_tiny_2seeds golden
@pytest.mark.integration
def test_vmapped_seeds_equal_separate_runs(tmp_path):
  config = tiny_config(train=dict(steps=6, batch_size=8, max_length=6, checkpoint_every=3,
                                  log_every=3, num_seeds=3, seed=5))
  train.prepare_workdir(config, str(tmp_path / "all"))
  _, stacked = train.train(config, str(tmp_path / "all"))
  for i in range(3):
    single = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=5 + i,
                                                                   num_seeds=1))
    train.prepare_workdir(single, str(tmp_path / f"s{i}"))
    _, params = train.train(single, str(tmp_path / f"s{i}"))
    # Adam turns float-rounding differences of tiny gradients into lr-sized steps: atol.
    chex.assert_trees_all_close(params, jax.tree.map(lambda x, i=i: x[i], stacked),
                                rtol=1e-3, atol=2e-4)
  leaves = jax.tree.leaves(stacked)
  assert not np.allclose(np.asarray(leaves[0])[0], np.asarray(leaves[0])[1]), "seeds differ"


@pytest.mark.integration
def test_results_report_every_seed_and_their_spread(tmp_path):
  config = tiny_config(train=dict(steps=3, batch_size=8, max_length=6, checkpoint_every=3,
                                  log_every=1, num_seeds=2))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert results["num_seeds"] == 2 and [s["seed"] for s in results["seeds"]] == [0, 1]
  spread = results["score_over_seeds"]["in_distribution"]
  values = [s["score"]["in_distribution"] for s in results["seeds"]]
  assert spread["mean"] == np.mean(values) and spread["std"] == np.std(values)
  assert results["eval"] == results["seeds"][0]["eval"], "seed 0 keeps the single-seed schema"


@pytest.mark.slow  # the same property is checked in the default run by test_train.py::test_resume_equals_uninterrupted (one loop)
@pytest.mark.integration
def test_resume_with_seeds(tmp_path):
  config = tiny_config(train=dict(steps=6, batch_size=8, max_length=6, checkpoint_every=3,
                                  log_every=3, num_seeds=2))
  _, full = train.train(config, str(tmp_path / "full"))
  train.train(config, str(tmp_path / "split"), until=3)
  _, resumed = train.train(config, str(tmp_path / "split"))
  chex.assert_trees_all_equal(full, resumed)

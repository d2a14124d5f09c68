"""End-to-end training: one run, resume equal to uninterrupted, workdir safety, NaN stop."""

from __future__ import annotations

import json
import os

import chex
import jax
import numpy as np
import pytest

from lengthgen import build, data, evaluate, train
from lengthgen.config import ConfigError
from conftest import tiny_config


@pytest.mark.integration
def test_end_to_end_writes_workdir(tmp_path):
  config = tiny_config()
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  for name in ("config.json", "metrics.jsonl", "results.json", "length_generalization.png"):
    assert (tmp_path / name).exists(), name
  on_disk = json.loads((tmp_path / "results.json").read_text())
  assert on_disk == json.loads(json.dumps(results))
  assert [r["length"] for r in on_disk["eval"]] == list(range(1, 10))
  for key in ("task", "positional", "normalizer", "model", "train_lengths", "steps", "seed",
              "eval", "score"):
    assert key in on_disk
  assert set(on_disk["score"]) >= {"in_distribution", "out_of_distribution"}
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  train_steps = [r["step"] for r in rows if r["split"] == "train"]
  assert train_steps == sorted(train_steps) and train_steps[-1] == 12
  assert all(np.isfinite(r["loss"]) for r in rows if r["split"] == "train")
  # the learning rate and the update norm are logged with the loss: the row of step s holds
  # the rate of the update that made step s (schedule index s-1)
  schedule = build.learning_rate_schedule(config.train)
  for r in (r for r in rows if r["split"] == "train"):
    assert r["learning_rate"] == pytest.approx(float(schedule(r["step"] - 1)), rel=1e-5)
    assert r["update_norm"] > 0
  # TensorBoard shows what metrics.jsonl holds, and the figure
  from test_summaries import logged, shown  # pylint: disable=g-import-not-at-top
  assert shown(tmp_path / "tensorboard") == logged(tmp_path)
  assert {"train/learning_rate", "train/update_norm", "eval/out_of_distribution"} <= set(
      shown(tmp_path / "tensorboard"))


def test_one_step_reduces_loss_on_repeated_batch():
  config = tiny_config()
  setup = build.setup(config)
  tx = build.make_optimizer(config.train)
  inputs = data.training_inputs(setup, 0)
  state = build.init_state(setup.model, tx, inputs, 0)
  key = jax.random.key(0)
  losses = []
  step = jax.jit(lambda s, i: train.train_step(s, i, key, setup=setup, tx=tx))
  for _ in range(8):
    state, m = step(state, inputs)
    losses.append(float(m["loss"]))
  assert losses[-1] < losses[0]


@pytest.mark.integration
def test_resume_equals_uninterrupted(tmp_path):
  config = tiny_config(model=dict(num_layers=2, width=32, num_heads=2, dropout=0.1))
  _, full = train.train(config, str(tmp_path / "full"))
  train.prepare_workdir(config, str(tmp_path / "split"))
  train.train(config, str(tmp_path / "split"), until=6)  # "crash" after step 6
  _, resumed = train.train(config, str(tmp_path / "split"))
  chex.assert_trees_all_equal(full, resumed)


def test_training_data_is_a_function_of_seed_and_step():
  config = tiny_config()
  setup = build.setup(config)
  a = data.training_inputs(setup, 5)
  b = data.training_inputs(setup, 5)
  c = data.training_inputs(setup, 6)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["tokens"], c["tokens"])
  lengths = (a["loss_mask"].sum(axis=1) - 1)  # answer tokens = source length (copy)
  assert lengths.min() >= 1 and lengths.max() <= 6


def test_workdir_with_other_config_is_refused(tmp_path):
  train.prepare_workdir(tiny_config(), str(tmp_path))
  other = tiny_config(model=dict(num_layers=2, width=32, num_heads=2, positional="rope"))
  with pytest.raises(train.WorkdirConflict, match=r"model\.positional: 'nope' .* 'rope'"):
    train.prepare_workdir(other, str(tmp_path))
  (tmp_path / "metrics.jsonl").write_text("{}\n")
  third = tiny_config(model=dict(num_layers=2, width=32, num_heads=2, positional="alibi"))
  train.prepare_workdir(third, str(tmp_path), new_run=True)  # keeps the old run aside
  kept = tmp_path / "previous_runs" / "1"
  assert json.loads((kept / "config.json").read_text())["model"]["positional"] == "nope"
  assert (kept / "metrics.jsonl").read_text() == "{}\n"
  (tmp_path / "metrics.jsonl").write_text("{}\n")
  train.prepare_workdir(other, str(tmp_path), overwrite=True)
  assert json.loads((tmp_path / "config.json").read_text())["model"]["positional"] == "rope"
  assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.integration
def test_nan_loss_stops_with_step_and_checkpoint(tmp_path):
  config = tiny_config(train=dict(steps=12, batch_size=8, max_length=6, warmup_steps=0,
                                  learning_rate=1e30, checkpoint_every=1, log_every=1))
  train.prepare_workdir(config, str(tmp_path))
  with pytest.raises(train.NonFiniteLoss, match=r"at step \d+; stopping\. (the last good "
                     r"checkpoint is step \d+|no checkpoint was saved)"):
    train.train(config, str(tmp_path))


@pytest.mark.slow  # the same property is checked in the default run by test_multitask.py::test_hint_run_fine_tunes_from_a_hint_parent (one loop)
@pytest.mark.integration
def test_fine_tune_starts_from_parent_params(tmp_path):
  parent = tiny_config(train=dict(steps=8, batch_size=8, max_length=6, checkpoint_every=4,
                                  log_every=4))
  train.prepare_workdir(parent, str(tmp_path / "parent"))
  _, parent_params = train.train(parent, str(tmp_path / "parent"))
  child = tiny_config(train=dict(steps=3, batch_size=8, max_length=8, checkpoint_every=4,
                                 log_every=1, init_from=str(tmp_path / "parent")),
                      eval=dict(max_length=12, num_examples=8, batch_size=8, bucket=16))
  train.prepare_workdir(child, str(tmp_path / "child"))
  _, params = train.train(child, str(tmp_path / "child"), until=0)
  chex.assert_trees_all_equal(parent_params, params)
  wide = tiny_config(model=dict(num_layers=2, width=64, num_heads=2),
                     train=dict(init_from=str(tmp_path / "parent")))
  train.prepare_workdir(wide, str(tmp_path / "wide"))
  with pytest.raises(ValueError, match="do not match this model"):
    train.train(wide, str(tmp_path / "wide"))


@pytest.mark.integration
def test_eval_stride_evaluates_every_kth_length(tmp_path):
  config = tiny_config(eval=dict(min_length=1, max_length=9, stride=4, num_examples=8,
                                 batch_size=8, bucket=16))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert [r["length"] for r in results["eval"]] == [1, 5, 9]
  beyond = [r["exact_match"] for r in results["eval"] if r["length"] > 6]
  assert results["score"]["out_of_distribution"] == pytest.approx(sum(beyond) / len(beyond))


def test_eval_task_options_change_what_evaluation_samples(tmp_path):
  def addition(**eval_options):
    return build.load_config({
        "task": "addition", "task_options": {"reversed": True, "operands": "bucket"},
        "model": dict(num_layers=1, width=32, num_heads=2),
        "train": dict(steps=4, batch_size=8, max_length=3, warmup_steps=1, checkpoint_every=4,
                      log_every=4),
        "eval": dict(max_length=4, num_examples=8, batch_size=8, bucket=16,
                     task_options=eval_options)})

  config = addition(operands="natural")
  s = build.setup(config)
  assert s.tasks[0].task.operands == "bucket" and s.tasks[0].eval_task.operands == "natural"
  assert s.tasks[0].eval_task.reversed  # the training task's options stay unless overridden
  inputs = evaluate.length_inputs(s, 4)
  natural = s.tasks[0].eval_task
  for row in inputs["tokens"]:  # both operands have all 4 digits at evaluation
    text = natural.render(row).split()
    assert text.index("+") == 4 and text.index("=") == 9
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert [r["length"] for r in results["eval"]] == [1, 2, 3, 4]
  with pytest.raises(ConfigError, match=r"config.eval.task_options: .*unknown operands"):
    addition(operands="mixed")
  with pytest.raises(ConfigError, match="config.eval.task_options: the evaluation task must "
                                        "have the training task's vocabulary"):
    tiny_config(eval=dict(task_options={"alphabet_size": 4}))

"""The recall stream (an LM-style next-token task) and the per-length ``loss`` of evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_config_file
from lengthgen import build, evaluate, tasks, train
from lengthgen.build import load_config


def test_supervised_targets_are_the_values_of_recurring_keys():
  task = tasks.get("recall_stream", num_keys=32, num_values=4, repeats=3)
  batch = task.sample(np.random.default_rng(0), 64, 20)
  assert batch.tokens.shape == (64, 41)
  for tokens, targets, mask in zip(batch.tokens, batch.targets, batch.loss_mask):
    keys = tokens[0::2]
    assert mask[-1] and not mask[0]                     # final key supervised, first never
    assert not mask[1::2].any()                         # only key positions predict
    seen = set()
    for i, key in enumerate(keys):
      assert mask[2 * i] == (key in seen)
      seen.add(int(key))
    assert list(targets[mask]) == task.solve(np.append(tokens, targets[-1]))
    assert len(set(keys.tolist())) <= task.pool_size(20)  # 7 distinct keys at most


def test_pool_grows_with_length_and_values_are_consistent():
  task = tasks.get("recall_stream")
  assert [task.pool_size(n) for n in (1, 2, 3, 64)] == [1, 1, 2, 32]
  batch = task.sample(np.random.default_rng(1), 8, 200)
  for tokens in batch.tokens:
    table = {}
    for key, value in zip(tokens[0::2], tokens[1::2]):
      assert table.setdefault(int(key), int(value)) == value   # one binding per key


@pytest.mark.parametrize("options,match", [
    ({"repeats": 0}, "repeats must be a positive integer"),
    ({"num_keys": True}, "num_keys must be a positive integer")])
def test_bad_options_are_refused(options, match):
  with pytest.raises(ValueError, match=f"task 'recall_stream': {match}"):
    tasks.get("recall_stream", **options)


def test_length_beyond_the_key_pool_is_refused():
  task = tasks.get("recall_stream", num_keys=4, repeats=2)
  task.sample(np.random.default_rng(0), 2, 8)
  with pytest.raises(ValueError, match=r"task 'recall_stream': length must be .* at most 8"):
    task.sample(np.random.default_rng(0), 2, 9)


def test_length_row_loss_is_the_mean_supervised_cross_entropy():
  inputs = {"x": np.arange(5)}
  per_example = {"correct": np.array([1, 2, 0, 3, 1]), "total": np.array([2, 2, 1, 3, 2]),
                 "exact": np.array([0, 1, 0, 1, 0], bool),
                 "nll": np.array([1.0, 0.5, 2.0, 0.3, 0.7])}
  row = evaluate.length_row(lambda c: {k: v[c["x"]] for k, v in per_example.items()},
                            inputs, 7, size=5)
  np.testing.assert_allclose(row["loss"], 4.5 / 10)
  assert row["token_accuracy"] == 0.7 and row["exact_match"] == 0.4
  without = evaluate.length_row(
      lambda c: {k: v[c["x"]] for k, v in per_example.items() if k != "nll"}, inputs, 7, 5)
  assert "loss" not in without


def test_stream_preset_trains_and_reports_loss_per_length(tmp_path):
  d = load_config_file("softplus_recall").get_config("stream,tiny").to_dict()
  d["train"].update(steps=4, checkpoint_every=4)
  config = load_config(d)
  assert config.task == "recall_stream"
  setup, params = train.train(config, str(tmp_path), tensorboard=False)
  rows = evaluate.evaluate(setup, params)
  assert [r["length"] for r in rows] == list(evaluate.eval_lengths(config))
  for r in rows:
    assert np.isfinite(r["loss"]) and r["loss"] > 0


def test_stream_full_config_lengths():
  config = load_config(load_config_file("softplus_recall").get_config("stream"))
  assert (config.train.max_length, config.eval.max_length) == (32, 256)
  assert 2 * 32 + 1 == build.setup(config).tasks[0].task.sample(
      np.random.default_rng(0), 1, 32).tokens.shape[1]

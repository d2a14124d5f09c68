"""Property-based tests (hypothesis): task generators and malformed configs never crash unclearly."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lengthgen.tasks as tasks
from lengthgen.config import ConfigError, ExperimentConfig

SETTINGS = settings(max_examples=25, deadline=None, derandomize=bool(os.environ.get("CI")),
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), batch_size=st.integers(1, 5),
       length=st.integers(-3, 40))
def test_task_contract_or_clear_error(name, seed, batch_size, length):
  task = tasks.get(name)
  try:
    batch = task.sample(np.random.default_rng(seed), batch_size, length)
  except ValueError as e:
    assert name in str(e) and "length" in str(e), str(e)
    assert length < 1 or length > 3, f"{name} refused the ordinary length {length}: {e}"
    return
  assert length >= 1, f"{name} accepted the impossible length {length}"
  b, n = batch.tokens.shape
  assert b == batch_size and batch.targets.shape == (b, n) and batch.loss_mask.shape == (b, n)
  assert batch.tokens.dtype.kind == "i" and batch.targets.dtype.kind == "i"
  assert 0 <= batch.tokens.min() and batch.tokens.max() < len(task.vocab)
  assert 0 <= batch.targets.min() and batch.targets.max() < len(task.vocab)
  assert batch.loss_mask.any(axis=1).all(), "every example supervises at least one token"
  assert (batch.targets[batch.loss_mask] != 0).all(), "padding is never a target"
  again = task.sample(np.random.default_rng(seed), batch_size, length)
  np.testing.assert_array_equal(batch.tokens, again.tokens)
  assert isinstance(task.render(batch.tokens[0]), str)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4),
                                                                          st.integers(), max_size=2))
_FIELDS = [("task",), ("task_options",), ("model", "kind"), ("model", "num_layers"),
           ("model", "width"), ("model", "num_heads"), ("model", "dropout"),
           ("model", "positional"), ("model", "positional_options"), ("model", "normalizer"),
           ("model", "dtype"), ("model", "window"), ("train", "steps"),
           ("train", "batch_size"), ("train", "learning_rate"), ("train", "min_length"),
           ("train", "max_length"), ("train", "seed"), ("eval", "max_length"),
           ("eval", "bucket"), ("eval", "score_metric"), ("model",), ("train",)]


@SETTINGS
@given(field=st.sampled_from(_FIELDS), value=_VALUES)
def test_malformed_config_gives_config_error_naming_the_field(field, value):
  from conftest import tiny_config
  d = tiny_config().to_dict()
  target = d
  for key in field[:-1]:
    target = target[key]
  target[field[-1]] = value
  try:
    ExperimentConfig.from_dict(d)
  except ConfigError as e:
    assert "config." in str(e), str(e)
    named = ".".join(field)
    assert named in str(e) or field[0] in str(e), (named, str(e))


_FLAG_FIELDS = ["model.positional", "model.num_layers", "model.width", "model.window",
                "model.dropout", "model.normalizer", "train.steps", "train.learning_rate",
                "train.max_length", "eval.max_length", "eval.bucket", "task", "model.head",
                "train.init_from", "model.no_such_field"]


@SETTINGS
@given(field=st.sampled_from(_FLAG_FIELDS),
       value=st.one_of(st.text(alphabet="abc019-.e+ ", max_size=6), st.integers(-5, 10**7),
                       st.sampled_from(["None", "True", "nan", "inf", "-1", "1e400", "[]",
                                        "{'x': 1}"])))
def test_malformed_flags_fail_with_a_clear_message(field, value):
  """Parse --config.<field>=<value> as the CLI does: either it works or the error is clear."""
  from absl import flags
  from ml_collections import config_flags
  from lengthgen import configs
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv)
  argv = ["train", f"--config={configs.resolve('demo:tiny')}",
          f"--config.{field}={value}"]
  try:
    fv(argv)
    config = fv.config
  except (flags.Error, ValueError, TypeError, KeyError, AttributeError) as e:
    assert field.split(".")[-1] in str(e) or str(value) in str(e) or "config" in str(e), str(e)
    return
  try:
    ExperimentConfig.from_dict(config)
  except ConfigError as e:
    assert "config." in str(e), str(e)

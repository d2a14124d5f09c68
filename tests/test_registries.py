"""Every registry entry and every config file builds; unknown names list the valid ones."""

from __future__ import annotations

import glob
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
import lengthgen.positional as pe
import lengthgen.tasks as tasks
from lengthgen.config import ConfigError, ExperimentConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, "experiments", "configs", "*.py")))
CONFIG_FILES = [p for p in CONFIG_FILES if not p.endswith("__init__.py")]


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_task_builds_and_samples(name):
  task = tasks.get(name)
  length = getattr(task, "min_length", 1) if isinstance(getattr(task, "min_length", 1), int) else 1
  batch = task.sample(np.random.default_rng(0), 3, max(length, 3))
  assert batch.tokens.shape[0] == 3
  assert batch.tokens.max() < len(task.vocab)
  assert batch.loss_mask.any()


@pytest.mark.parametrize("name", sorted(pe.ENCODINGS))
def test_every_encoding_builds(name):
  encoding = pe.get(name)
  assert isinstance(encoding, pe.Encoding)


@pytest.mark.parametrize("registry,getter,what", [
    (tasks.TASKS, tasks.get, "task"),
    (pe.ENCODINGS, pe.get, "positional encoding"),
])
def test_unknown_names_list_valid_choices(registry, getter, what):
  with pytest.raises(ValueError) as e:
    getter("no_such_thing")
  message = str(e.value)
  assert f"unknown {what} 'no_such_thing'" in message
  for name in registry:
    assert name in message


def test_unknown_normalizer_and_implementation_are_named():
  q = jnp.ones((1, 4, 2, 8))
  with pytest.raises(ValueError, match="unknown normalizer 'nope'.*softmax"):
    attn.dot_product_attention(q, q, q, normalizer="nope")
  with pytest.raises(ValueError, match="unknown implementation 'cuda'.*xla"):
    attn.dot_product_attention(q, q, q, implementation="cuda")


def _load(path):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_every_config_file_loads_and_validates(path):
  module = _load(path)
  assert module.__doc__ and "python -m experiments.train" in module.__doc__, (
      "a config's docstring gives the exact command")
  presets = getattr(module, "PRESETS", [""])
  for preset in presets:
    ExperimentConfig.from_dict(module.get_config(preset))


def test_demo_config_rejects_unknown_preset():
  module = _load(os.path.join(ROOT, "experiments", "configs", "demo.py"))
  with pytest.raises(ValueError, match="unknown preset 'huge'.*tiny"):
    module.get_config("huge")


def test_config_validation_names_the_field():
  base = _load(os.path.join(ROOT, "experiments", "configs", "demo.py")).get_config("tiny")
  cases = [
      (("model", "positional"), "ropee", r"config\.model\.positional: unknown value 'ropee'.*rope"),
      (("model", "width"), 31, r"config\.model\.width: width 31 must be divisible by num_heads"),
      (("train", "learning_rate"), -1.0, r"config\.train\.learning_rate: must be > 0"),
      (("eval", "stride"), 0, r"config\.eval\.stride: must be >= 1, got 0"),
      (("train", "warmup_steps"), 10**6, r"config\.train\.warmup_steps: must be in \[0, steps="),
      (("train", "steps"), "many", r"config\.train\.steps must be an integer"),
      (("eval", "score_metric"), "bleu", r"config\.eval\.score_metric: unknown value 'bleu'"),
      (("task",), "sorting", r"config\.task: unknown value 'sorting'.*sort"),
  ]
  for path, value, pattern in cases:
    d = base.to_dict()
    target = d
    for key in path[:-1]:
      target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=pattern):
      ExperimentConfig.from_dict(d)
  d = base.to_dict()
  d["train"]["stepz"] = 3
  with pytest.raises(ConfigError, match=r"unknown field\(s\) config\.train\.stepz; valid fields"):
    ExperimentConfig.from_dict(d)


def test_learned_table_shorter_than_eval_lengths_is_refused():
  d = _load(os.path.join(ROOT, "experiments", "configs", "demo.py")).get_config("tiny").to_dict()
  d["model"]["positional"] = "learned"
  d["model"]["positional_options"] = {"max_length": 16}
  with pytest.raises(ConfigError, match=r"'learned' supports positions below 16.*needs 21"):
    ExperimentConfig.from_dict(d)

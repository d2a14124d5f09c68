"""Every registry entry and every config file builds; unknown names list the valid ones."""

from __future__ import annotations

import glob
import os

import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
import lengthgen.positional as pe
import lengthgen.tasks as tasks
from conftest import CONFIG_DIR, load_config_file
from lengthgen.build import load_config
from lengthgen.config import ConfigError
from lengthgen.tasks.chomsky import CHOMSKY_TASKS

CONFIG_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONFIG_DIR, "*.py"))
                      if not p.endswith("__init__.py"))


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


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_every_config_file_loads_and_validates(name):
  module = load_config_file(name)
  assert module.__doc__ and f"lengthgen-train --config={name[:-3]}" in module.__doc__, (
      "a config's docstring gives the exact command")
  for preset in module.PRESETS:
    load_config(module.get_config(preset))


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_unknown_preset_names_the_file_and_every_choice(name):
  module = load_config_file(name)
  with pytest.raises(ValueError) as e:
    module.get_config("tiny,huge")
  message = str(e.value)
  assert message.startswith(f"unknown preset 'huge' of {name}; valid presets: tiny")
  for preset in {p for entry in module.PRESETS for p in entry.split(",") if p}:
    assert preset in message


def test_presets_apply_in_order_and_tiny_is_shared():
  kz = load_config_file("kazemnejad_copy")
  assert kz.get_config("replace,cpu").to_dict() == kz.get_config("cpu,replace").to_dict()
  assert kz.get_config("cpu,tiny").train.steps == 10
  assert kz.get_config("tiny,cpu").train.steps == 1500
  for name in CONFIG_FILES:
    c = load_config_file(name).get_config("tiny")
    assert (c.model.num_layers, c.model.width, c.train.steps) == (1, 32, 10), name
    assert c.train.max_length <= 6 and c.eval.max_length <= 10, name
  chomsky = load_config_file("chomsky")
  assert chomsky.get_config("bucket_sort,tiny").task == "bucket_sort"
  with pytest.raises(ValueError, match="unknown preset 'sort' of chomsky.py") as e:
    chomsky.get_config("sort")
  assert set(CHOMSKY_TASKS) <= set(str(e.value).split("valid presets: ")[1].split(", "))


def test_config_validation_names_the_field():
  base = load_config_file("demo").get_config("tiny")
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
      load_config(d)
  d = base.to_dict()
  d["train"]["stepz"] = 3
  with pytest.raises(ConfigError, match=r"unknown field\(s\) config\.train\.stepz; valid fields"):
    load_config(d)


def test_learned_table_shorter_than_eval_lengths_is_refused():
  d = load_config_file("demo").get_config("tiny").to_dict()
  d["model"]["positional"] = "learned"
  d["model"]["positional_options"] = {"max_length": 16}
  with pytest.raises(ConfigError, match=r"'learned' supports positions below 16.*needs 21"):
    load_config(d)

"""Config files (one per experiment; see each file's docstring) and their one preset mechanism.

A config is addressed by name or by path: ``--config=demo:tiny`` is this package's
``demo.py`` with the argument ``tiny`` (``names()`` lists them), ``--config=path/to/file.py:arg``
any file (``resolve`` turns either into a path). A config file's ``get_config(arg)`` builds
the full-size experiment, then returns ``apply_presets(c, arg, __file__, presets, cpu=...)``.
``arg`` is what follows the colon: preset names separated by commas, applied left to right.
Every file has ``tiny``; a file that passes ``cpu`` keywords has ``cpu`` (``cpu_scale`` with
them); its own presets are functions editing the config in place, keyed by name in ``presets``.
In a checkout, ``experiments/configs`` is a link to this directory.
"""

from __future__ import annotations

import functools
import os
from typing import Callable

from lengthgen import extras

extras.require("ml_collections", "lengthgen.configs")
import ml_collections  # noqa: E402  (installed: checked above)

from lengthgen.config import default_config_dict  # noqa: E402

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))

Preset = Callable[[ml_collections.ConfigDict], None]


def names() -> list[str]:
  """The names of the packaged config files (``demo`` for ``demo.py``), sorted."""
  return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                if f.endswith(".py") and not f.startswith("_"))


def resolve(spec: str) -> str:
  """``FILE[:arg]`` or ``NAME[:arg]`` -> ``FILE[:arg]``; a file that exists wins over a name.

  Raises:
    ValueError: ``spec`` is neither an existing file nor a config name; the message lists the
      names.
  """
  path, colon, arg = spec.partition(":")
  if os.path.isfile(path):
    return spec
  if path in names():
    return os.path.join(CONFIG_DIR, f"{path}.py") + colon + arg
  raise ValueError(f"config file {path} not found, and {path!r} is not a config name "
                   f"(in --config={spec}); config names: {', '.join(names())}")


def reproduction_config(task: str, task_options: dict, *, model: dict, train: dict,
                        eval: dict) -> ml_collections.ConfigDict:  # pylint: disable=redefined-builtin
  """A decoder config from the defaults with these overrides (checkpoints every 1000 steps)."""
  c = default_config_dict()
  c.task = task
  c.task_options = dict(task_options)
  c.model.update(kind="decoder", mlp_ratio=4.0, **model)
  c.train.update(dict(weight_decay=0.01, grad_clip=1.0, seed=0, checkpoint_every=1000,
                      log_every=250), **train)
  c.eval.update(dict(num_examples=256, batch_size=256, bucket=32), **eval)
  return c


def tiny(c: ml_collections.ConfigDict) -> None:
  """The ``tiny`` preset: seconds on a CPU, for tests (its score means nothing).

  1 layer of width 32 with 2 heads; 10 steps of batch 8; training lengths 1..min(max, 6)
  and evaluation lengths 1..min(max, 10) with 16 examples each.
  """
  c.model.update(num_layers=1, width=32, num_heads=2)
  c.train.update(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=5, log_every=5,
                 min_length=1, max_length=min(c.train.max_length, 6))
  c.eval.update(min_length=1, max_length=min(c.eval.max_length, 10), num_examples=16,
                batch_size=16, bucket=16)


def cpu_scale(c: ml_collections.ConfigDict, steps: int = 1500, eval_stride: int = 1, *,
              scale_model: bool = True, width: int = 64,
              learning_rate: float | None = 1e-3,
              batch_size: int = 32, eval_examples: int = 128,
              task_options: dict | None = None, train_max_length: int | None = None,
              eval_max_length: int | None = None,
              dropout: float | None = None,
              warmup_steps: int = 100) -> ml_collections.ConfigDict:
  """The ``cpu`` preset: the experiment at a size a 2-core CPU trains in minutes.

  Args:
    c: the config, edited in place.
    steps: training steps (a checkpoint every 500, a log row every 250).
    eval_stride: evaluate every ``eval_stride``-th length.
    scale_model: use 2 layers x ``width`` with 4 heads; False keeps the file's model.
    width: the model width when ``scale_model``.
    learning_rate: the learning rate; None keeps the file's.
    batch_size: training batch size.
    eval_examples: evaluation examples per length (also the evaluation batch size).
    task_options: task options to update, e.g. a smaller alphabet.
    train_max_length: a shorter maximum training length; None keeps the file's lengths.
    eval_max_length: a shorter maximum evaluation length; None keeps the file's lengths.
    dropout: the model's dropout at this size; None keeps the file's.
    warmup_steps: the learning-rate warm-up.

  Returns:
    ``c``.
  """
  if scale_model:
    c.model.update(num_layers=2, width=width, num_heads=4)
  if learning_rate is not None:
    c.train.learning_rate = learning_rate
  if task_options:
    c.task_options.update(task_options)
  c.train.update(steps=steps, batch_size=batch_size, warmup_steps=warmup_steps,
                 checkpoint_every=500,
                 log_every=250)
  c.eval.update(num_examples=eval_examples, batch_size=eval_examples, stride=eval_stride)
  if train_max_length is not None:
    c.train.max_length = train_max_length
  if eval_max_length is not None:
    c.eval.max_length = eval_max_length
  if dropout is not None:
    c.model.dropout = dropout
  return c


def apply_presets(c: ml_collections.ConfigDict, arg: str, file: str,
                  presets: dict[str, Preset] | None = None, *,
                  cpu: dict | None = None) -> ml_collections.ConfigDict:
  """Applies the comma-separated presets of ``arg`` to ``c`` in order.

  Args:
    c: the file's full-size config, edited in place.
    arg: the preset string, e.g. ``"replace,cpu"``; empty means none.
    file: the config file (``__file__``), named in errors.
    presets: the file's own presets, name -> function editing the config.
    cpu: keyword arguments of ``cpu_scale`` for this file's ``cpu`` preset; None means the
      file has no ``cpu`` preset.

  Returns:
    ``c``.

  Raises:
    ValueError: a name that is not a preset of this file; the message lists every valid one.
  """
  name = os.path.basename(file)
  available: dict[str, Preset] = {"tiny": tiny}
  if cpu is not None:
    available["cpu"] = functools.partial(cpu_scale, **cpu)
  for preset, fn in (presets or {}).items():
    if preset in available:
      raise ValueError(f"{name} redefines the shared preset {preset!r}")
    available[preset] = fn
  for preset in (p.strip() for p in arg.split(",")):
    if not preset:
      continue
    if preset not in available:
      raise ValueError(f"unknown preset {preset!r} of {name}; valid presets: "
                       f"{', '.join(available)}")
    available[preset](c)
  return c

"""Config files (one per experiment; see each file's docstring) and what they share."""

from __future__ import annotations

import ml_collections

from lengthgen.config import default_config_dict


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


def cpu_scale(c: ml_collections.ConfigDict, steps: int = 1500,
              eval_stride: int = 1) -> ml_collections.ConfigDict:
  """The ``cpu`` preset: the same task, lengths and protocol with a model and a schedule a
  2-core CPU trains in minutes (2 layers x 64 wide, batch 32, lr 1e-3, ``steps`` steps) and
  128 evaluation examples per length, every ``eval_stride``-th length."""
  c.model.update(num_layers=2, width=64, num_heads=4)
  c.train.update(steps=steps, batch_size=32, learning_rate=1e-3, warmup_steps=100,
                 checkpoint_every=500, log_every=250)
  c.eval.update(num_examples=128, batch_size=128, stride=eval_stride)
  return c


def apply_presets(c: ml_collections.ConfigDict, arg: str, presets: dict, file: str,
                  cpu_steps: int = 1500, cpu_eval_stride: int = 1):
  """Applies the comma-separated presets of ``arg``: ``tiny`` (seconds, for tests), ``cpu``
  (``cpu_scale`` with ``cpu_steps`` and ``cpu_eval_stride``) or one of ``presets`` (name ->
  function editing the config); unknown names list the valid ones."""
  for preset in [p for p in arg.split(",") if p]:
    if preset == "cpu":
      cpu_scale(c, cpu_steps, cpu_eval_stride)
    elif preset == "tiny":
      c.model.update(num_layers=1, width=32, num_heads=2)
      c.train.update(steps=10, batch_size=8, warmup_steps=2, checkpoint_every=5, log_every=5,
                     min_length=1, max_length=min(c.train.max_length, 4))
      c.eval.update(min_length=1, max_length=min(c.eval.max_length, 8), num_examples=16,
                    batch_size=16, bucket=16)
    elif preset in presets:
      presets[preset](c)
    else:
      raise ValueError(f"unknown preset {preset!r} of {file}; valid presets: "
                       f"{', '.join(['tiny', 'cpu', *presets])}")
  return c

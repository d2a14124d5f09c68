"""Task hinting for sorting (Awasthi & Gupta 2023): sort n tokens of an alphabet of 64, train
on n in 1..20, evaluate n in 1..120, with and without a hint task on a shared trunk.

    python -m experiments.train --config=experiments/configs/task_hinting.py:successor \\
        --workdir=workdirs/task_hinting/successor

Presets (combine with commas, e.g. ``:successor,temperature``):
  ``""``             no hint (the baseline)
  ``successor``, ``predecessor``, ``count_smaller``, ``fill``: that hint task on half of each
                     batch, weight 1, its own output head (``multitask_head=per_task``)
  ``temperature``    the length-dependent softmax temperature (learned per-head scale x log n)
  ``indicator``      a task token instead of per-task heads
  ``cpu``            the CPU calibration: alphabet 16, train 1..8, evaluate 1..24, 2 layers of
                     width 64, 1500 steps (about 3-6 minutes on a 2-core CPU)
  ``tiny``           a few seconds, for tests

Runtime and expected result: the GPU runs (4 layers, width 256, 20k steps, batch 128) are NOT
yet measured with this machinery. The targets (issue 7) are exact match < 0.01 at length 100
without hint and >= 0.92 with the successor hint. FINDINGS.md records that a naive "successor
of every element" hint and a naive temperature did not help (0.00 at 100, H100, ~4 min per
run). The ``cpu`` preset's single-seed calibrations are in results/task_hinting/README.md.
"""

from __future__ import annotations

import ml_collections

from lengthgen.config import default_config_dict

HINTS = ("successor", "predecessor", "count_smaller", "fill")
PRESETS = ["", "tiny", "cpu", "temperature", "indicator", *HINTS, "successor,temperature",
           "cpu,successor", "tiny,successor", "tiny,successor,indicator", "tiny,fill,temperature"]


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "sort"
  c.task_options = {"alphabet_size": 64}
  c.model.update(kind="decoder", num_layers=4, width=256, num_heads=8, mlp_ratio=4.0,
                 positional="nope", normalizer="softmax")
  c.train.update(steps=20000, batch_size=128, learning_rate=3e-4, warmup_steps=500,
                 weight_decay=0.01, grad_clip=1.0, min_length=1, max_length=20, seed=0,
                 checkpoint_every=2000, log_every=500)
  c.eval.update(min_length=1, max_length=120, num_examples=256, batch_size=256, bucket=32)
  c.multitask_head = "per_task"
  presets = [p for p in arg.split(",") if p]
  hints = [p for p in presets if p in HINTS]
  for preset in presets:
    if preset == "tiny":
      c.task_options = {"alphabet_size": 8}
      c.model.update(num_layers=2, width=32, num_heads=2)
      c.train.update(steps=12, batch_size=8, max_length=6, warmup_steps=2, checkpoint_every=6,
                     log_every=4)
      c.eval.update(max_length=9, num_examples=8, batch_size=8, bucket=16)
    elif preset == "cpu":
      c.task_options = {"alphabet_size": 16}
      c.model.update(num_layers=2, width=64, num_heads=4)
      c.train.update(steps=1500, batch_size=64, learning_rate=1e-3, warmup_steps=100,
                     max_length=8, checkpoint_every=500, log_every=250)
      c.eval.update(max_length=24, num_examples=128, batch_size=128)
    elif preset == "temperature":
      c.model.length_temperature = True
    elif preset == "indicator":
      c.multitask_head = "indicator"
    elif preset not in HINTS:
      raise ValueError(f"unknown preset {preset!r} of task_hinting.py; valid presets: tiny, "
                       f"cpu, temperature, indicator, {', '.join(HINTS)}")
  alphabet = c.task_options["alphabet_size"]
  c.hints = [{"name": h, "options": {"alphabet_size": alphabet}, "weight": 1.0,
              "fraction": 0.5 / len(hints)} for h in hints]
  return c

"""Task hinting for sorting (Awasthi & Gupta 2023): sort n tokens of an alphabet of 64, train
on n in 1..20, evaluate n in 1..120, with and without a hint task on a shared trunk.

    lengthgen-train --config=task_hinting:successor \\
        --workdir=workdirs/task_hinting/successor

Presets (combine with commas, e.g. ``:successor,temperature``):
  ``""``             no hint (the baseline)
  ``successor``, ``predecessor``, ``count_smaller``, ``count_equal``, ``fill``, ``successor_each``,
  ``identity_successor``, ``successor_stable``: that hint task (lengthgen/tasks/hints.py); the hints
                     share half of each batch, weight 1, each its own output head
                     (``multitask_head=per_task``)
  ``temperature``    the length-dependent softmax temperature (learned per-head scale x log n)
  ``indicator``      a task token instead of per-task heads
  ``cpu``            the CPU calibration: alphabet 16, train 1..8, evaluate 1..40 (5x), 2 layers of
                     width 64, batch 64, 1500 steps (about 2-5 minutes on a 2-core CPU)
  ``wide``           after ``cpu``: 4 layers of width 128 (the 2 x 64 trunk is too small to
                     learn a hint beside sort: every hint lowered sort's own accuracy there)
  ``tiny``           seconds, for tests

Runtime and expected result of the full-size config (4 layers, width 256, 20k steps, batch
128): no run is recorded. The paper's targets: exact match < 0.01 at length 100 without a
hint and >= 0.92 with the successor hint. At CPU scale (``cpu,wide``, 3 fresh seeds, 10-18
minutes per run on 2 cores; results/task_hinting_cpu/README.md) the successor hint lowers
exact match at 2.5x the training length (0.680 against 0.849 without a hint); single-seed
calibrations of every hint are in results/calibration/task_hinting_seed0/.
"""

from __future__ import annotations

import ml_collections

from lengthgen.configs import apply_presets
from lengthgen.config import default_config_dict

HINTS = ("successor", "predecessor", "count_smaller", "count_equal", "fill", "successor_each",
         "identity_successor", "successor_stable")
PRESETS = ["", "tiny", "cpu", "temperature", "indicator", "cpu,wide", *HINTS, "successor,temperature",
           "cpu,successor", "tiny,successor", "tiny,successor,indicator", "tiny,fill,temperature",
           "tiny,identity_successor"]


def temperature(c: ml_collections.ConfigDict) -> None:
  """The length-dependent softmax temperature."""
  c.model.length_temperature = True


def wide(c: ml_collections.ConfigDict) -> None:
  """4 layers of width 128, 4 heads (after ``cpu``: the CPU setting at 4x its capacity)."""
  c.model.update(num_layers=4, width=128, num_heads=4)


def indicator(c: ml_collections.ConfigDict) -> None:
  """A task token instead of per-task output heads."""
  c.multitask_head = "indicator"


def hint(name: str):
  """The preset adding hint task ``name`` (its options and share are set in get_config)."""
  def add(c: ml_collections.ConfigDict) -> None:
    c.hints.append({"name": name})
  return add


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
  presets = {"temperature": temperature, "indicator": indicator, "wide": wide,
             **{name: hint(name) for name in HINTS}}
  apply_presets(c, arg, __file__, presets,
                cpu=dict(steps=1500, batch_size=64, task_options={"alphabet_size": 16},
                         train_max_length=8, eval_max_length=40))
  # Every hint uses the main task's alphabet; together the hints fill half of each batch.
  alphabet = c.task_options["alphabet_size"]
  c.hints = [{"name": h["name"], "options": {"alphabet_size": alphabet}, "weight": 1.0,
              "fraction": 0.5 / len(c.hints)} for h in c.hints]
  return c

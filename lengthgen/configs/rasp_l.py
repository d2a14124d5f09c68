"""Zhou et al. 2023 (RASP-L): mode and unique copy generalize in length, copy with repeated
tokens does not. Train lengths 1..40, evaluate 1..60 (1.5x); learned absolute positions
with a random per-example offset in training, their GPT-2 setting.

    lengthgen-train --config=rasp_l:mode --workdir=workdirs/rasp_l_mode
The three tasks, 3 seeds trained in one program each (CPU scale):
    for t in mode unique repeat; do
      lengthgen-train --config=rasp_l:$t,cpu --workdir=results/rasp_l_cpu/$t \
          --config.train.seed=3 --config.train.num_seeds=3
    done

Presets (a task preset, then optionally ``cpu`` or ``tiny``):
  ``mode``    "a3 a1 a3 a0 | a3": the most frequent of 8 symbols (ties: the smallest).
  ``unique``  copy of distinct tokens from an alphabet of 64 (RASP-L's unique copy).
  ``repeat``  copy of tokens drawn with replacement from 4 symbols, so tokens repeat (the
              copy that has no RASP-L program and should not generalize).
  ``cpu``     2 layers x 64, 3,000 steps of batch 32 at lr 1e-3 (minutes on a 2-core CPU).
  ``tiny``    seconds, for tests.

Model (full size): 4 layers, width 128, 4 heads, learned positions (a table of 512) with
training offsets uniform in [0, 300), so every position an evaluation sequence uses
(at most 2 x 60 + 2 tokens) is trained; 5,000 steps of batch 64 at lr 5e-4.
What the paper's code would fix and we could not check (apple/ml-np-rasp has the RASP-L
programs, not the training code): the training and test lengths (ours: the issue's
1..40 and 1.5x), the alphabets, the model size and the offset range. Runtime and result
of the full-size config: no run is recorded; the ``cpu`` runs are in results/README.md.
"""

from __future__ import annotations

import ml_collections

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["mode", "unique", "repeat", "mode,cpu", "unique,cpu", "repeat,cpu", "mode,tiny",
           "unique,tiny"]


def _task(name: str, options: dict):
  def preset(c: ml_collections.ConfigDict) -> None:
    c.task = name
    c.task_options = dict(options)
  return preset


def get_config(arg: str = "mode") -> ml_collections.ConfigDict:
  c = reproduction_config(
      "mode", {"alphabet_size": 8},
      model=dict(num_layers=4, width=128, num_heads=4, positional="learned",
                 positional_options={"max_length": 512}, positions="offset",
                 positions_options={"max_offset": 300}),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=40),
      eval=dict(min_length=1, max_length=60))
  presets = {"mode": _task("mode", {"alphabet_size": 8}),
             "unique": _task("copy", {"variant": "unique", "alphabet_size": 64}),
             "repeat": _task("copy", {"variant": "plain", "alphabet_size": 4})}
  return apply_presets(c, arg, __file__, presets, cpu=dict(steps=3000))

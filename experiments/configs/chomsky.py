"""The Deletang et al. 2023 / Ruoss et al. 2023 encoder protocol on one Chomsky task.

    python -m experiments.train --config=experiments/configs/chomsky.py:reverse_string \
        --workdir=workdirs/chomsky_reverse_string --config.model.positional=rope
    python -m experiments.train --config=experiments/configs/chomsky.py:parity_check,tiny \
        --workdir=/tmp/chomsky_tiny

The argument is ``task_name[,preset...]`` or presets alone (task: even_pairs, the
reference's default). A non-causal encoder reads the input and fills blank answer slots;
it trains on lengths uniform in 1..40 and is evaluated on every length 1..500 with 512
examples each. The score is the mean per-token accuracy (``eval.score_metric =
token_accuracy``) over lengths 41..500, 41 included: results.json's
``score.out_of_distribution``. Model as in both papers: 5 layers, width 64, 8 heads,
sinusoidal positions (Deletang's baseline; change with --config.model.positional).

Presets:
  (none)      10,000 steps of batch 128 at learning rate 1e-3 (the reference's example run).
              Runtime: not measured here (no accelerator run in this session); the
              500-length evaluation alone is 256k examples, far too slow for a 2-core CPU.
              Expected result (from the papers, not reproduced here): token accuracy near 1
              on the training lengths for the simple tasks, and beyond length 40 mostly
              near chance for an encoder with sinusoidal positions (Deletang et al. 2023);
              randomized positions raise the score on most tasks (Ruoss et al. 2023).
  paper       1,000,000 steps at learning rate 1e-4 (the papers' budget; GPU days per task).
  randomized  Ruoss et al.'s randomized positions: a sorted random subset of [0, 2048).
  cpu         the protocol scaled to a 2-core CPU: 2,000 steps of batch 64; every 10th length
              (1, 11, ..., 491: the score averages 41, 51, ..., 491) with 64 examples each.
              Used by scripts/reproduce_cpu.sh chomsky (results/chomsky_cpu/).
  tiny        1 layer of width 16, 10 steps, train lengths 1..5, evaluation 1..12 with 16
              examples: runs in seconds on a CPU, for tests only (the score means nothing).
"""

from __future__ import annotations

import ml_collections

from lengthgen.config import default_config_dict
from lengthgen.tasks.chomsky import CHOMSKY_TASKS

PRESETS = ["", "tiny", "paper", "randomized", "cpu", "parity_check,tiny", "solve_equation,tiny"]
TRAIN_MAX_LENGTH = 40     # training lengths uniform in 1..40
EVAL_MAX_LENGTH = 500     # every length 1..500 is evaluated


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "even_pairs"
  c.task_options = {}
  c.model.update(kind="encoder", num_layers=5, width=64, num_heads=8, mlp_ratio=4.0,
                 positional="sinusoidal", normalizer="softmax")
  c.train.update(steps=10_000, batch_size=128, learning_rate=1e-3, warmup_steps=500,
                 weight_decay=0.0, grad_clip=1.0, min_length=1, max_length=TRAIN_MAX_LENGTH,
                 seed=0, checkpoint_every=2_000, log_every=500)
  c.eval.update(min_length=1, max_length=EVAL_MAX_LENGTH, num_examples=512, batch_size=512,
                bucket=64, score_metric="token_accuracy")
  valid = sorted(CHOMSKY_TASKS) + ["tiny", "paper", "randomized", "cpu"]
  for part in (p.strip() for p in arg.split(",") if p.strip()):
    if part in CHOMSKY_TASKS:
      c.task = part
    elif part == "tiny":
      c.model.update(num_layers=1, width=16, num_heads=2)
      c.train.update(steps=10, batch_size=8, max_length=5, warmup_steps=2,
                     checkpoint_every=5, log_every=5)
      c.eval.update(max_length=12, num_examples=16, batch_size=16, bucket=16)
    elif part == "paper":
      c.train.update(steps=1_000_000, learning_rate=1e-4, checkpoint_every=50_000,
                     log_every=5_000)
    elif part == "cpu":  # the protocol scaled to a 2-core CPU (see the docstring)
      c.train.update(steps=2_000, batch_size=64, warmup_steps=100, checkpoint_every=500,
                     log_every=250)
      c.eval.update(num_examples=64, batch_size=64, stride=10)
    elif part == "randomized":
      c.model.update(positions="randomized", positions_options={"max_position": 2048})
    else:
      raise ValueError(f"unknown task or preset {part!r} of chomsky.py; valid: "
                       f"{', '.join(valid)}")
  return c

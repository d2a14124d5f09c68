"""The Deletang et al. 2023 / Ruoss et al. 2023 encoder protocol on one Chomsky task.

    lengthgen-train --config=chomsky:reverse_string \
        --workdir=workdirs/chomsky_reverse_string --config.model.positional=rope
    lengthgen-train --config=chomsky:parity_check,tiny \
        --workdir=/tmp/chomsky_tiny

The argument is presets separated by commas; a task name is a preset choosing that task
(without one: even_pairs, the reference's default). A non-causal encoder reads the input
and fills blank answer slots; it trains on lengths uniform in 1..40 and is evaluated on
every length 1..500 with 512 examples each. The score is the mean per-token accuracy
(``eval.score_metric = token_accuracy``) over lengths 41..500, 41 included: results.json's
``score.out_of_distribution``. Model and optimizer as in both papers' code
(google-deepmind/randomized_positional_encodings, ``TransformerEncoder``): 5 layers, width 64,
8 heads, the post-norm block (``model.block="post_ln"``: ReLU, bias-free attention, the
token embedding scaled by sqrt(64)), dropout 0.1, Adam at a constant learning rate after
global-norm clipping at 1, sinusoidal positions (Deletang's baseline; change with
--config.model.positional).

Presets:
  (none)      10,000 steps of batch 128 at learning rate 1e-3 (the reference's example run).
              Runtime: no run is recorded; the 500-length evaluation alone is 256k
              examples, too slow for a 2-core CPU. Expected result (from the papers, not
              reproduced here): token accuracy near 1 on the training lengths for the
              simple tasks, and beyond length 40 mostly near chance for an encoder with
              sinusoidal positions (Deletang et al. 2023); randomized positions raise the
              score on most tasks (Ruoss et al. 2023).
  paper       1,000,000 steps at learning rate 1e-4 (the papers' budget; GPU days per task).
  randomized  Ruoss et al.'s randomized positions: one sorted subset of [0, 2048) per example.
  cpu         the protocol scaled to a 2-core CPU, model unchanged: 2,000 steps of batch 64;
              every 10th length (1, 11, ..., 491: the score averages 41, 51, ..., 491) with
              64 examples each. results/ruoss_chomsky_cpu/ is this preset with
              train.steps=1000 and eval.stride=25 (the command is in results/README.md):
              3 seeds vmapped in one program took 520-527 s (even_pairs) and 1,160-1,332 s
              (bucket_sort) on one 2-core machine, 2,544-2,609 s (reverse_string) on a slower one
              without AVX2, 1,224-1,240 s (missing_duplicate_string, not learned at this
              budget).
  tiny        the shared tiny preset (lengthgen/configs/__init__.py): train lengths 1..6,
              evaluation 1..10; seconds on a CPU, for tests only (the score means nothing).
  <task>      one of lengthgen.tasks.chomsky.CHOMSKY_TASKS, e.g. parity_check.
"""

from __future__ import annotations

import ml_collections

from lengthgen.configs import apply_presets
from lengthgen.config import default_config_dict
from lengthgen.tasks.chomsky import CHOMSKY_TASKS

PRESETS = ["", "tiny", "paper", "randomized", "cpu", "parity_check,tiny", "solve_equation,tiny"]
TRAIN_MAX_LENGTH = 40     # training lengths uniform in 1..40
EVAL_MAX_LENGTH = 500     # every length 1..500 is evaluated


def paper(c: ml_collections.ConfigDict) -> None:
  """The papers' training budget: 1,000,000 steps at learning rate 1e-4."""
  c.train.update(steps=1_000_000, learning_rate=1e-4, checkpoint_every=50_000,
                 log_every=5_000)


def randomized(c: ml_collections.ConfigDict) -> None:
  """Ruoss et al.'s randomized positions: one sorted random subset of [0, 2048) per example."""
  c.model.update(positions="randomized", positions_options={"max_position": 2048})


def task(name: str):
  """The preset choosing the Chomsky task ``name``."""
  def choose(c: ml_collections.ConfigDict) -> None:
    c.task = name
  return choose


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "even_pairs"
  c.task_options = {}
  c.model.update(kind="encoder", num_layers=5, width=64, num_heads=8, mlp_ratio=4.0,
                 positional="sinusoidal", normalizer="softmax", block="post_ln", dropout=0.1)
  c.train.update(steps=10_000, batch_size=128, learning_rate=1e-3, warmup_steps=0,
                 lr_schedule="constant", weight_decay=0.0, grad_clip=1.0, min_length=1,
                 max_length=TRAIN_MAX_LENGTH,
                 seed=0, checkpoint_every=2_000, log_every=500)
  c.eval.update(min_length=1, max_length=EVAL_MAX_LENGTH, num_examples=512, batch_size=512,
                bucket=64, score_metric="token_accuracy")
  presets = {"paper": paper, "randomized": randomized,
             **{name: task(name) for name in sorted(CHOMSKY_TASKS)}}
  return apply_presets(c, arg, __file__, presets,
                       cpu=dict(steps=2_000, eval_stride=10, scale_model=False,
                                learning_rate=None, batch_size=64, eval_examples=64,
                                warmup_steps=0))

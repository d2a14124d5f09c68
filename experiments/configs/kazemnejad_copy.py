"""Kazemnejad et al. 2023: copy with one token repeated / with replacement, train 4-20, test 21-40.

Command (one run):
  .venv/bin/python -m experiments.train --config=experiments/configs/kazemnejad_copy.py \
      --workdir=/tmp/kz_nope --config.model.positional=nope
The grid (scripts/sweep.py):
  .venv/bin/python scripts/sweep.py --config=experiments/configs/kazemnejad_copy.py \
      --dir=results/kazemnejad_copy --encodings=nope,t5,alibi,rope,sinusoidal --seeds=0,1,2 \
      --vmap_seeds --parallel=5
Presets: ``''`` = repeat variant, ``replace`` = replacement variant, ``tiny`` (seconds, tests).
Runtime: not yet measured on GPU (4 layers x 128 wide, 5000 steps; estimated minutes per run).
Expected (paper's anchors, exact match over 21-40): repeat NoPE 0.986, T5 0.771, ALiBi 0.289,
RoPE 0.000, APE 0.000; replace NoPE 0.967, T5 0.939, ALiBi 0.170. Ours: not yet run.
"""

import ml_collections

from experiments.configs import cpu_scale
from lengthgen.config import default_config_dict

PRESETS = ["", "replace", "tiny", "replace,tiny", "cpu", "replace,cpu"]


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "copy"
  c.task_options = {"variant": "repeat"}
  c.model.update(kind="decoder", num_layers=4, width=128, num_heads=4, mlp_ratio=4.0,
                 positional="nope", normalizer="softmax")
  c.train.update(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 weight_decay=0.01, grad_clip=1.0, min_length=4, max_length=20, seed=0,
                 checkpoint_every=1000, log_every=250)
  c.eval.update(min_length=4, max_length=40, num_examples=256, batch_size=256, bucket=32)
  for preset in [p for p in arg.split(",") if p]:
    if preset == "replace":
      c.task_options = {"variant": "replace"}
    elif preset == "cpu":
      cpu_scale(c)
    elif preset == "tiny":
      c.model.update(num_layers=2, width=32, num_heads=2)
      c.train.update(steps=20, batch_size=8, min_length=2, max_length=6, warmup_steps=5,
                     checkpoint_every=10, log_every=5)
      c.eval.update(min_length=2, max_length=10, num_examples=16, batch_size=16, bucket=16)
    else:
      raise ValueError(f"unknown preset {preset!r} of kazemnejad_copy.py; valid presets: "
                       "replace, tiny, cpu")
  return c

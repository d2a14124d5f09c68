"""Kazemnejad et al. 2023: copy with one token repeated / with replacement, train 4-20, test 21-40.

One run:
    python -m experiments.train --config=experiments/configs/kazemnejad_copy.py \
        --workdir=workdirs/kz_nope --config.model.positional=nope
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=experiments/configs/kazemnejad_copy.py \
        --dir=results/kazemnejad_copy --encodings=nope,t5,alibi,rope,sinusoidal --seeds=0,1,2 \
        --vmap_seeds --parallel=5

Model: 4 layers, width 128, 4 heads; 5,000 steps of batch 64 at lr 5e-4; 256 evaluation
examples per length 4..40. Anchors (the paper's exact match over 21-40): repeat NoPE 0.986,
T5 0.771, ALiBi 0.289, RoPE 0.000, APE 0.000; replace NoPE 0.967, T5 0.939, ALiBi 0.170.
Runtime and result of the full-size config: no run is recorded. At CPU scale (``cpu``,
``replace,cpu``; scripts/reproduce_cpu.sh) both are in results/README.md.
Presets: ``''`` the repeat variant, ``replace`` the replacement variant, ``cpu`` (2 x 64,
1,500 steps, batch 32), ``tiny`` (seconds, tests).
"""

import ml_collections

from experiments.configs import apply_presets
from lengthgen.config import default_config_dict

PRESETS = ["", "replace", "tiny", "replace,tiny", "cpu", "replace,cpu"]


def replace(c: ml_collections.ConfigDict) -> None:
  """The replacement variant of copy."""
  c.task_options.update(variant="replace")


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
  return apply_presets(c, arg, __file__, {"replace": replace}, cpu=dict(steps=1500))

"""Kazemnejad et al. 2023's negative control: parity without scratchpad, train 1-20, test 21-40.

    lengthgen-train --config=parity \
        --workdir=workdirs/parity_nope --config.model.positional=nope
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=parity --dir=results/parity \
        --encodings=nope,t5,sinusoidal --seeds=0,1,2 --vmap_seeds --parallel=3

Length is the number of bits; the answer is one token, so exact match is accuracy (chance
0.5). Model: 4 layers, width 128, 4 heads; 5,000 steps of batch 64 at lr 5e-4.
Anchors (exact match over 21-40): NoPE 0.66, T5 0.53, APE 0.51 -- no encoding solves it.
Runtime and result of the full-size config: no run is recorded. At CPU scale (``cpu``;
scripts/reproduce_cpu.sh) both are in results/README.md.
Presets: ``tiny`` (seconds, tests), ``cpu`` (2 x 64, 1,500 steps, batch 32), ``scratchpad``
(the running parity written out).
"""

import ml_collections

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu", "scratchpad"]


def scratchpad(c: ml_collections.ConfigDict) -> None:
  """Parity with its running value written out before the answer."""
  c.task_options.update(scratchpad=True)


def get_config(arg: str = ""):
  c = reproduction_config(
      "parity", {"scratchpad": False},
      model=dict(num_layers=4, width=128, num_heads=4, positional="nope"),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=20),
      eval=dict(min_length=1, max_length=40))
  return apply_presets(c, arg, __file__, {"scratchpad": scratchpad}, cpu=dict(steps=1500))

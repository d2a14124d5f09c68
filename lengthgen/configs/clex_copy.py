"""CLEX (Chen et al. 2023) on a synthetic task: copy trained to 64 tokens, evaluated to 4x.

    lengthgen-train --config=clex_copy \
        --workdir=workdirs/copy_clex
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=clex_copy --dir=results/clex_copy \
        --encodings=clex,rope,rope_ntk,nope --seeds=0,1,2 --vmap_seeds --parallel=4

Copy of n tokens (alphabet 16): n in 1..31 in training (at most 64 tokens, CLEX's
``train_length``), every n in 1..127 at evaluation (up to 256 tokens, 4x). CLEX samples a
scale t in [1, 4] per training batch and solves its ODE for the frequencies; at evaluation
t = tokens / 64. Model: 4 layers, width 128, 4 heads; 5,000 steps of batch 64 at lr 5e-4.
No anchor exists on synthetic tasks (this is new). Runtime and result of the full-size
config: no run is recorded. At CPU scale (``cpu``; scripts/reproduce_cpu.sh) both are in
results/README.md. Presets: ``tiny`` (seconds, tests), ``cpu`` (2 x 64, 1,500 steps, batch 32).
"""

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu"]


def get_config(arg: str = ""):
  c = reproduction_config(
      "copy", {"alphabet_size": 16},
      model=dict(num_layers=4, width=128, num_heads=4, positional="clex"),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=31),
      eval=dict(min_length=1, max_length=127))
  return apply_presets(c, arg, __file__, cpu=dict(steps=1500))

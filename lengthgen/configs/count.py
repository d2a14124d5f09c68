"""RASP-L count (Zhou et al. 2023): "<s> a b | a a+1 ... b", train spans up to 50, test 100.

    lengthgen-train --config=count \
        --workdir=workdirs/count_nope
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=count --dir=results/count \
        --encodings=nope,alibi,rope --seeds=0,1,2 --vmap_seeds --parallel=3

Length is the number of outputs b - a + 1 (numbers are tokens n0..n155). Model: 4 layers,
width 128, 4 heads; 5,000 steps of batch 64 at lr 5e-4; evaluation at every span 1..100.
Anchor: at least 0.95 exact match at 100. Runtime and result of the full-size config: no run
is recorded. At CPU scale (``cpu``; scripts/reproduce_cpu.sh) both are in results/README.md.
Presets: ``tiny`` (seconds, tests), ``cpu`` (2 x 64, 1,500 steps, batch 32).
"""

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu"]


def get_config(arg: str = ""):
  c = reproduction_config(
      "count", {"max_value": 155},
      model=dict(num_layers=4, width=128, num_heads=4, positional="nope"),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=50),
      eval=dict(min_length=1, max_length=100))
  return apply_presets(c, arg, __file__, cpu=dict(steps=1500))

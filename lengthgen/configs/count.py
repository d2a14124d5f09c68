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
Presets: ``tiny`` (seconds, tests), ``cpu`` (2 x 64, 1,500 steps, batch 32),
``learned_offset`` (Zhou et al.'s recipe: learned absolute positions, a table of 512, with
training offsets uniform in [0, 300), so every position a length-100 example uses is
trained). The CPU run of the recipe (results/count_learned_offset_cpu/):
    lengthgen-train --config=count:learned_offset,cpu --config.train.steps=8000 \
        --workdir=results/count_learned_offset_cpu/count_learned_offset_s3x3 \
        --config.train.seed=3 --config.train.num_seeds=3
"""

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu", "learned_offset", "learned_offset,cpu"]


def learned_offset(c) -> None:
  """Learned absolute positions with random training offsets (Zhou et al. 2023)."""
  c.model.update(positional="learned", positional_options={"max_length": 512},
                 positions="offset", positions_options={"max_offset": 300})


def get_config(arg: str = ""):
  c = reproduction_config(
      "count", {"max_value": 155},
      model=dict(num_layers=4, width=128, num_heads=4, positional="nope"),
      train=dict(steps=5000, batch_size=64, learning_rate=5e-4, warmup_steps=200,
                 min_length=1, max_length=50),
      eval=dict(min_length=1, max_length=100))
  return apply_presets(c, arg, __file__, {"learned_offset": learned_offset},
                       cpu=dict(steps=1500))

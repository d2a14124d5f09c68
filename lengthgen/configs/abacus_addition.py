"""Abacus embeddings (McLeish et al. 2024) on reversed addition: train up to 10 digits, test 20.

    lengthgen-train --config=abacus_addition \
        --workdir=workdirs/addition_abacus
The grid, 3 seeds trained in one program per encoding (scripts/sweep.py):
    python scripts/sweep.py --config=abacus_addition \
        --dir=results/abacus_addition --encodings=abacus,nope,rope --seeds=0,1,2 \
        --vmap_seeds --parallel=3

Training data follow the authors' code (mcleish7/arithmetic, ``bucket_method_gen``): one
operand has n digits and the other 1..n, no leading zeros, least significant digit first,
answer the sum's own digits (``operands="bucket"``); evaluation scores two n-digit operands
(``config.eval.task_options = {"operands": "natural"}``). Abacus gives each digit its 1-based
place within its number, shifted in training by a random offset below 100 (the paper's
trick), looked up in a learned table. Model: 4 layers, width 256, 8 heads; 10,000 steps of
batch 128 at lr 5e-4 (the authors train 16 layers x 1024 for a day on one GPU, on up to 20
digits). Anchor: at least 0.9 exact match at 20 digits, where NoPE and RoPE stay near 0.
Runtime and result of the full-size config: no run is recorded.
FIRE with randomized positions and index hints (Zhou et al. 2024), the fourth row:
    python scripts/sweep.py --config=abacus_addition:index_hints \
        --dir=results/abacus_addition_fire_hints --encodings=fire --positions=randomized \
        --seeds=0,1,2 --vmap_seeds
Presets: ``index_hints`` (every digit after its place token), ``tiny`` (seconds, tests),
``cpu`` (2 x 128, 4 heads, 4,000 steps of batch 128 at lr 1e-3: on seed 0, 785 s on a 2-core
CPU, 0.999 in distribution, 0.95-0.99 up to 15 digits, 0.37 at 16, 0.02 at 20 with Abacus;
results/calibration/abacus_seed0/; the 3-seed table in results/README.md).
"""

from lengthgen.configs import apply_presets, reproduction_config

PRESETS = ["", "tiny", "cpu", "index_hints", "index_hints,cpu"]


def _index_hints(c) -> None:
  """Zhou et al. 2024's fourth row: every digit preceded by its place-value token (the
  sweep sets ``positional=fire`` and ``positions=randomized``)."""
  c.task_options.index_hints = True


def get_config(arg: str = ""):
  c = reproduction_config(
      "addition", {"reversed": True, "operands": "bucket"},
      model=dict(num_layers=4, width=256, num_heads=8, positional="abacus"),
      train=dict(steps=10000, batch_size=128, learning_rate=5e-4, warmup_steps=500,
                 min_length=1, max_length=10),
      eval=dict(min_length=1, max_length=20))
  c.eval.task_options = {"operands": "natural"}
  return apply_presets(c, arg, __file__, {"index_hints": _index_hints},
                       cpu=dict(steps=4000, width=128, batch_size=128))

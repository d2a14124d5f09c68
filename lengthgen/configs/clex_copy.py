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
config: no run is recorded.

At CPU scale (``cpu``: 2 x 128, 4 heads, 4,000 steps of batch 32 at lr 1e-3, the smallest
setting at which CLEX fitted the training lengths on tuning seed 0; 2 x 64 reached 0.944 in
12,000 steps), fresh seeds 3-5:
    python scripts/sweep.py --config=clex_copy:cpu --dir=results/clex_copy_cpu \
        --encodings=clex,rope --seeds=3,4,5 --vmap_seeds
29-33 minutes per encoding on a 2-core CPU (jax 0.11.2). Both fit in distribution
(exact match over n = 1-31: CLEX 0.956 +- 0.004, RoPE 0.996); at 2x (n = 62) exact match is
CLEX 0.083 +- 0.039, RoPE 0.000, token accuracy 0.952 +- 0.009 and 0.067, at 4x (n = 124) token
accuracy 0.604 +- 0.125 and 0.062 (results/README.md). Presets: ``tiny`` (seconds, tests),
``cpu``.
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
  return apply_presets(c, arg, __file__, cpu=dict(steps=4000, width=128))

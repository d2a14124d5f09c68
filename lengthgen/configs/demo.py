"""The demo: copy with NoPE, trained on lengths 1-10 and evaluated up to 30 (3x).

    lengthgen-train --config=demo --workdir=workdirs/demo

Runtime: about 3 minutes on a 2-core CPU (jax 0.11.2). Expected result (measured): exact
match 0.96 on the training lengths, still 0.77 at length 11 and 0.47 at 13, then 0 from
about 19; token accuracy falls gradually (0.35 at 30). See the README's table.

Presets: ``:tiny`` (seconds, for tests), ``:rope`` (the same run with RoPE).
"""

from __future__ import annotations

import ml_collections

from lengthgen.configs import apply_presets
from lengthgen.config import default_config_dict

PRESETS = ["", "tiny", "rope"]  # every preset; tests build each one


def rope(c: ml_collections.ConfigDict) -> None:
  """The same run with RoPE."""
  c.model.positional = "rope"


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  c = default_config_dict()
  c.task = "copy"
  c.task_options = {"alphabet_size": 16}
  c.model.update(kind="decoder", num_layers=4, width=128, num_heads=4, mlp_ratio=4.0,
                 positional="nope", normalizer="softmax")
  c.train.update(steps=1500, batch_size=64, learning_rate=1e-3, warmup_steps=100,
                 weight_decay=0.01, grad_clip=1.0, min_length=1, max_length=10, seed=0,
                 checkpoint_every=500, log_every=250)
  c.eval.update(min_length=1, max_length=30, num_examples=256, batch_size=256, bucket=32)
  return apply_presets(c, arg, __file__, {"rope": rope})

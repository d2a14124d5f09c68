"""Every encoding, position sampler, normalizer and head trains end to end (a few steps)."""

from __future__ import annotations

import numpy as np
import pytest

import lengthgen.attention as attn
import lengthgen.positional as pe
from lengthgen import train
from conftest import tiny_config

pytestmark = pytest.mark.integration

VARIANTS = ([dict(positional=name) for name in pe.ENCODINGS]
            + [dict(positional="relative", positional_options={"random_distances": 64})]
            + [dict(positions="randomized", positions_options={"max_position": 64})]
            + [dict(normalizer=name) for name in attn.NORMALIZERS]
            + [dict(length_temperature=True), dict(normalizer="ssmax", qk_norm=True),
               dict(window=3, global_tokens=1),
               dict(positional="rope", window=3, global_tokens=1),
               dict(head="pointer")])


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v_}" for k, v_ in v.items()
                                                                  if not isinstance(v_, dict)))
def test_variant_trains_end_to_end(tmp_path, variant):
  config = tiny_config(model=dict(num_layers=1, width=32, num_heads=2, **variant),
                       train=dict(steps=4, batch_size=8, max_length=6, checkpoint_every=4,
                                  log_every=1))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert all(np.isfinite(r["token_accuracy"]) for r in results["eval"])

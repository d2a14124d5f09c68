"""Shared fixtures: tiny configs that train in seconds on a CPU."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

from lengthgen.config import ExperimentConfig  # noqa: E402


def tiny_config(**overrides) -> ExperimentConfig:
  """A 2-layer width-32 model on copy, lengths 1-6, 12 steps; overrides by section."""
  d = {
      "task": "copy",
      "task_options": {"alphabet_size": 8},
      "model": dict(num_layers=2, width=32, num_heads=2),
      "train": dict(steps=12, batch_size=8, max_length=6, warmup_steps=2, checkpoint_every=4,
                    log_every=4),
      "eval": dict(max_length=9, num_examples=8, batch_size=8, bucket=16),
  }
  for section, values in overrides.items():
    if isinstance(values, dict) and isinstance(d.get(section), dict):
      d[section] = {**d[section], **values}
    else:
      d[section] = values
  return ExperimentConfig.from_dict(d)


@pytest.fixture
def tiny():
  return tiny_config

"""Shared fixtures and helpers: tiny configs, the repository root, config files, random q/k/v.

Test files import the helpers directly: ``from conftest import ROOT, load_config_file``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import types

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The test models are tiny, so XLA's compile time dominates the run: the tests compile at
# backend optimization level 0 (about a third less wall time on 2 cores; values agree within
# every test's tolerance) and share one persistent compilation cache between the xdist
# workers, their subprocesses and later runs. LENGTHGEN_TEST_FULL_OPT=1 keeps XLA's defaults.
ORIGINAL_XLA_FLAGS = os.environ.get("XLA_FLAGS")  # before the line below adds to it
if os.environ.get("LENGTHGEN_TEST_FULL_OPT") != "1":
  if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
      tempfile.gettempdir(), f"lengthgen-test-jax-cache-{os.getuid()}"))
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def full_opt_env() -> dict[str, str]:
  """This process's environment with XLA's default optimization (for bitwise goldens)."""
  env = {**os.environ, "LENGTHGEN_TEST_FULL_OPT": "1"}
  env.pop("XLA_FLAGS", None)
  if ORIGINAL_XLA_FLAGS is not None:
    env["XLA_FLAGS"] = ORIGINAL_XLA_FLAGS
  return env


import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lengthgen.build import load_config  # noqa: E402
from lengthgen.config import ExperimentConfig  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the repository root
CONFIG_DIR = os.path.join(ROOT, "lengthgen", "configs")  # experiments/configs links here


def load_file(path: str, name: str | None = None) -> types.ModuleType:
  """Imports the Python file ``path`` (relative to ROOT or absolute) as a fresh module."""
  path = os.path.join(ROOT, path)
  name = name or os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config_file(name: str) -> types.ModuleType:
  """The config file ``lengthgen/configs/<name>`` (``"demo"`` or ``"demo.py"``) as a module."""
  if not name.endswith(".py"):
    name += ".py"
  return load_file(os.path.join(CONFIG_DIR, name), f"config_{name[:-3]}")


def random_qkv(seed: int = 0, b: int = 2, t: int = 8, s: int | None = None, h: int = 2,
               d: int = 8, *, scale: float = 1.0, dtype=None):
  """Standard-normal q_BTHD, k_BSHD, v_BSHD drawn in that order from ``default_rng(seed)``.

  Args:
    seed: the numpy generator's seed.
    b: batch size.
    t: query length.
    s: key length (``t`` when None).
    h: heads.
    d: head dimension.
    scale: multiplies q and k (larger logits), not v.
    dtype: None returns float64 numpy arrays; otherwise jax arrays of this dtype.

  Returns:
    ``(q_BTHD, k_BSHD, v_BSHD)``.
  """
  s = t if s is None else s
  r = np.random.default_rng(seed)
  q, k, v = (r.normal(size=(b, t, h, d)) * scale, r.normal(size=(b, s, h, d)) * scale,
             r.normal(size=(b, s, h, d)))
  if dtype is None:
    return q, k, v
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return tuple(jnp.asarray(x, dtype) for x in (q, k, v))


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
  return load_config(d)


@pytest.fixture
def tiny():
  return tiny_config

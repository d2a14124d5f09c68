"""Importing the library's encodings and attention pulls in nothing beyond jax and flax."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

# Imported on first use only: CLEX's ODE solver, the Pallas kernels, and what training,
# checkpoints, configs, progress bars and figures need.
LAZY = ("diffrax", "equinox", "lengthgen.kernels", "matplotlib", "orbax", "ml_collections",
        "tqdm", "optax", "lengthgen.model", "lengthgen.train")


def test_attention_and_positional_import_no_heavy_modules():
  code = ("import sys, lengthgen, lengthgen.attention, lengthgen.positional; "
          f"print(' '.join(m for m in {LAZY!r} if m in sys.modules))")
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, check=True).stdout
  assert out.split() == [], f"imported eagerly: {out.split()}"

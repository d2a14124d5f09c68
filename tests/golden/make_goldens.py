"""Writes the golden outputs of a few tiny runs: tests/golden/<name>/{config.json,golden.json}.

    python tests/golden/make_goldens.py            # every golden
    python tests/golden/make_goldens.py demo_tiny  # one

Each golden pins a complete resolved config (not a preset, so changes to presets cannot move
it), the per-length results, and for every final parameter leaf a sha256 of its bytes with its
float64 sum and L2 norm, and the CPU it was written on (``machine()``). ``test_golden.py``
retrains each config: on the same CPU it asserts bitwise equality; on another CPU (XLA's CPU
code differs with the instruction set, e.g. AVX2 or not, and so does float rounding) it asserts
the same accuracies and the losses and leaf statistics to a relative 1e-3. Regenerate only for
a deliberate change of results, and say so in the commit message.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import sys
import tempfile

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name -> (config file, preset, overrides applied after the preset)
GOLDENS = {
    "demo_tiny": ("demo.py", "tiny", {}),
    "chomsky_tiny": ("chomsky.py", "parity_check,tiny", {}),
    "demo_tiny_2seeds": ("demo.py", "tiny", {"train.num_seeds": 2}),
    "t5_tiny": ("demo.py", "tiny", {"model.positional": "t5",
                                     "model.positional_options": {"share_bias": False}}),
}


def config_dict(file: str, preset: str, overrides: dict) -> dict:
  from lengthgen.build import load_config
  spec = importlib.util.spec_from_file_location("cfg", os.path.join(ROOT, "lengthgen",
                                                                     "configs", file))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config(preset)
  for path, value in overrides.items():
    node = c
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return load_config(c).to_dict()


def machine() -> str:
  """The CPU that float results depend on: architecture, model name and instruction flags."""
  model, flags = "", ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
          model = value.strip()
        if key.strip() in ("flags", "Features") and not flags:
          flags = " ".join(sorted(value.split()))
  except OSError:
    pass
  fingerprint = f"{platform.machine()}|{model}|{flags}"
  return hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


def leaf_stats(params) -> dict[str, dict]:
  """For every parameter leaf, by tree path: sha256 of its bytes (with dtype and shape), and
  its float64 sum and L2 norm."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    a = np.asarray(leaf)
    h = hashlib.sha256(f"{a.dtype}{a.shape}".encode() + a.tobytes()).hexdigest()
    a64 = a.astype(np.float64)
    out["/".join(str(getattr(k, "key", k)) for k in path)] = {
        "sha256": h, "sum": float(a64.sum()), "l2": float(np.sqrt((a64 ** 2).sum()))}
  return out


def run(config: dict) -> dict:
  """Trains ``config`` in a fresh workdir; returns what a golden records."""
  from lengthgen import workdir
  from lengthgen.build import load_config
  from lengthgen.train import train_and_evaluate
  with tempfile.TemporaryDirectory() as wd:
    results = train_and_evaluate(load_config(config), wd, verbose=False)
    state = workdir.restore(wd)[-1]
  keep = {k: results[k] for k in ("eval", "score", "seeds", "score_over_seeds") if k in results}
  return {"results": keep, "params": leaf_stats(state["params"]), "machine": machine()}


def main(names):
  for name in names or GOLDENS:
    config = config_dict(*GOLDENS[name])
    out = os.path.join(HERE, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
      json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(out, "golden.json"), "w") as f:
      json.dump(run(config), f, indent=2, sort_keys=True)
    print("wrote", out)


if __name__ == "__main__":
  main(sys.argv[1:])

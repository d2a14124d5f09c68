"""Scaling out: data parallel on 4 fake CPU devices equals 1 device; ring attention equals the
reference. The multi-device parts run in a subprocess, because the device count
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``) must be set before jax starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from lengthgen import parallel, train
from conftest import ROOT, tiny_config



def run_with_devices(code: str, n: int = 4, timeout: int = 240) -> str:
  """Runs ``code`` in a fresh Python with ``n`` fake CPU devices; returns its stdout."""
  env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
         "JAX_PLATFORMS": "cpu", "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
  proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _losses(workdir) -> list[float]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [r["loss"] for r in rows if r["split"] == "train"]


_CONFIG = dict(train=dict(steps=6, batch_size=8, max_length=6, warmup_steps=2,
                          checkpoint_every=3, log_every=1))


@pytest.mark.slow  # the same property is checked in the default run by test_multitask.py::test_hint_run_on_four_devices_matches_one_device (one loop)
@pytest.mark.integration
def test_four_devices_match_one_device(tmp_path):
  config = tiny_config(**_CONFIG)
  train.prepare_workdir(config, str(tmp_path / "one"))
  _, params = train.train(config, str(tmp_path / "one"))
  np.savez(tmp_path / "one.npz", *[np.asarray(x) for x in jax.tree.leaves(params)])
  out = run_with_devices(f"""
      import dataclasses, jax, numpy as np
      from conftest import tiny_config
      from lengthgen import train
      assert jax.device_count() == 4
      base = tiny_config(**{_CONFIG!r})
      for mode in ("replicated", "fsdp"):
        config = dataclasses.replace(base, train=dataclasses.replace(base.train,
                                                                     param_sharding=mode))
        wd = {str(tmp_path)!r} + "/" + mode
        train.prepare_workdir(config, wd)
        _, params = train.train(config, wd, until=3)  # checkpoint, then resume sharded
        _, params = train.train(config, wd)
        np.savez(wd + ".npz", *[np.asarray(x) for x in jax.tree.leaves(params)])
        print(mode, "devices", len(jax.tree.leaves(params)[0].sharding.device_set))
      """)
  assert "replicated devices 4" in out and "fsdp devices 4" in out
  one = _losses(tmp_path / "one")
  assert len(one) == 6
  ref = np.load(tmp_path / "one.npz")
  for mode in ("replicated", "fsdp"):
    np.testing.assert_allclose(_losses(tmp_path / mode), one, rtol=2e-5, atol=1e-6)
    got = np.load(tmp_path / f"{mode}.npz")
    for name in ref.files:
      np.testing.assert_allclose(got[name], ref[name], rtol=1e-3, atol=2e-4)


def test_fsdp_splits_large_leaves_and_replicates_the_rest():
  mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  tree = {"w": np.zeros((6, 16)), "b": np.zeros((3,)), "step": np.zeros(())}
  from lengthgen.parallel import mesh as mesh_lib
  assert mesh_lib._leaf_spec((6, 16), 4, "fsdp", 0) == jax.P(None, "data")
  assert mesh_lib._leaf_spec((4, 6, 16), 4, "fsdp", 1) == jax.P(None, None, "data")
  assert mesh_lib._leaf_spec((3,), 4, "fsdp", 0) == jax.P()
  assert mesh_lib._leaf_spec((8, 8), 4, "replicated", 0) == jax.P()
  with pytest.raises(ValueError, match="valid values: replicated, fsdp"):
    parallel.state_shardings(tree, mesh, "zero3")


@pytest.mark.integration
def test_ring_attention_equals_reference():
  out = run_with_devices("""
      import jax, jax.numpy as jnp, numpy as np
      import lengthgen.attention as attn
      import lengthgen.positional as pe
      from lengthgen.parallel import make_seq_mesh, ring_attention
      mesh = make_seq_mesh()
      r = np.random.default_rng(0)
      q, k, v = (jnp.asarray(r.normal(size=(2, 32, 4, 8)), jnp.float32) for _ in range(3))
      lengths = jnp.array([32, 19])
      worst = 0.0
      for causal in (True, False):
        for bias in (None, attn.AlibiBias(jnp.asarray(pe.alibi_slopes(4)),
                                          bidirectional=not causal)):
          got = ring_attention(q, k, v, mesh=mesh, causal=causal, bias=bias, lengths=lengths)
          want = attn.dot_product_attention(q, k, v, causal=causal, bias=bias, lengths=lengths,
                                            implementation="xla")
          worst = max(worst, float(jnp.abs(got - want).max()))
      got = jax.jit(lambda q, k, v: ring_attention(q, k, v, mesh=mesh))(q, k, v)
      assert len(got.sharding.device_set) == 4
      want = attn.dot_product_attention(q, k, v, implementation="xla")
      worst = max(worst, float(jnp.abs(got - want).max()))
      print("worst", worst)
      """)
  worst = float(out.split("worst")[1])
  assert worst < 1e-5


def test_ring_attention_refuses_unsupported_variants():
  mesh = parallel.make_seq_mesh()
  q = np.zeros((1, 8, 2, 4), np.float32)
  with pytest.raises(ValueError, match="normalizer 'softmax' only"):
    parallel.ring_attention(q, q, q, mesh=mesh, normalizer="ssmax")
  with pytest.raises(ValueError, match="window"):
    parallel.ring_attention(q, q, q, mesh=mesh, window=4)
  with pytest.raises(ValueError, match="AlibiBias"):
    parallel.ring_attention(q, q, q, mesh=mesh, bias=np.zeros((1, 2, 8, 8), np.float32))
  with pytest.raises(ValueError, match="T == S"):
    parallel.ring_attention(q, q[:, :4], q[:, :4], mesh=mesh)

"""Multi-host: two processes over loopback (jax.distributed) train, checkpoint and evaluate.

Each process has 2 fake CPU devices, so the "data" mesh spans 4 devices on 2 hosts; the
batch of each step is assembled from the two processes' halves. Slow (two jax start-ups,
compiles in each process): run with ``pytest -m slow tests/test_parallel_multihost.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import ROOT



def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.integration
@pytest.mark.slow
def test_two_processes_over_loopback_train_and_checkpoint(tmp_path):
  port = _free_port()
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
         "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
  workdir = str(tmp_path / "run")
  procs = []
  for i in range(2):
    cmd = [sys.executable, "-m", "lengthgen.cli", "--config=demo:tiny",
           f"--workdir={workdir}", "--config.train.steps=6", "--config.train.checkpoint_every=3",
           "--config.train.log_every=1", "--config.train.param_sharding=fsdp",
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"]
    procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  outs = []
  for p in procs:
    try:
      outs.append(p.communicate(timeout=540)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
  assert steps == [3, 6]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  train_steps = [r["step"] for r in rows if r["split"] == "train"]
  assert train_steps == [1, 2, 3, 4, 5, 6], "exactly one writer: process 0"
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  assert [r["length"] for r in results["eval"]] == list(range(1, 11))

"""Runs survive crashes and bad input: corrupt checkpoints, kill -9, malformed CLI flags."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax

import numpy as np
import pytest

from lengthgen import train
from lengthgen.checkpointing import CheckpointWarning, Checkpointer
from conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _corrupt(step_dir):
  """Truncates every file of a checkpoint, as a crash in the middle of a write could."""
  for root, _, files in os.walk(step_dir):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(0, os.path.getsize(f.name) // 3))


def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
  config = tiny_config(train=dict(steps=8, batch_size=8, max_length=6, checkpoint_every=4,
                                  log_every=4))
  train.prepare_workdir(config, str(tmp_path))
  _, params_at_8, _ = train.train(config, str(tmp_path))
  ckpt = Checkpointer(str(tmp_path))
  assert ckpt.all_steps() == [4, 8]
  _corrupt(os.path.join(ckpt.directory, "8"))
  task, model = train.build(config)
  from lengthgen import data
  state = train.init_state(model, train.make_optimizer(config.train),
                           data.training_inputs(config, task, 0), 0)
  with pytest.warns(CheckpointWarning, match="skipping checkpoint step 8"):
    step, _ = ckpt.restore_latest(state)
  assert step == 4
  assert os.path.isdir(os.path.join(ckpt.directory, "8.corrupt"))  # kept, not deleted
  # Training again resumes from step 4 and reaches the same parameters as before.
  _, params, _ = train.train(config, str(tmp_path))
  for a, b in zip(jax.tree.leaves(params_at_8), jax.tree.leaves(params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _cli(*args, timeout=120):
  return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,message", [
    (["--config=experiments/configs/demo.py:tiny", "--config.model.positional=ropee"],
     "config.model.positional: unknown value 'ropee'"),
    (["--config=experiments/configs/demo.py:tiny", "--config.train.steps=-3"],
     "config.train.steps: must be >= 1"),
    (["--config=experiments/configs/demo.py:huge"], "unknown preset 'huge'"),
    (["--config=experiments/configs/nothere.py"], "nothere.py"),
    (["--config=experiments/configs/demo.py:tiny", "--config.model.layers=3"],
     "unknown config field config.model.layers (in --config.model.layers=3); valid fields of "
     "config.model: attention_implementation"),
    (["--config=experiments/configs/demo.py:tiny", "--config.model.num_layers=abc"],
     "--config.model.num_layers=abc"),
])
def test_cli_rejects_bad_input_with_clear_message(tmp_path, args, message):
  result = _cli(*args, f"--workdir={tmp_path}")
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]


def test_cli_refuses_workdir_with_other_config(tmp_path):
  train.prepare_workdir(tiny_config(), str(tmp_path))
  result = _cli("--config=experiments/configs/demo.py:tiny", f"--workdir={tmp_path}")
  assert result.returncode == 2
  assert "holds a run with a different config" in result.stderr
  assert "--overwrite" in result.stderr


def test_workdir_written_before_a_field_existed_still_resumes(tmp_path):
  # A config.json without a field added later (here eval.stride and model.qk_norm) means
  # their defaults: the same run, not a conflict; a real difference is still refused.
  train.prepare_workdir(tiny_config(), str(tmp_path))
  path = tmp_path / "config.json"
  old = json.loads(path.read_text())
  del old["eval"]["stride"], old["model"]["qk_norm"]
  path.write_text(json.dumps(old))
  train.prepare_workdir(tiny_config(), str(tmp_path))
  with pytest.raises(train.WorkdirConflict, match=r"eval\.stride: 1 \(in workdir\) -> 2"):
    train.prepare_workdir(tiny_config(eval=dict(stride=2)), str(tmp_path))


@pytest.mark.slow
def test_kill_9_then_rerun_equals_uninterrupted(tmp_path):
  """SIGKILL at a random point of training; the same command then finishes bitwise equal."""
  args = ["--config=experiments/configs/demo.py:tiny", "--config.train.steps=60",
          "--config.train.checkpoint_every=5"]
  full = tmp_path / "full"
  assert _cli(*args, f"--workdir={full}").returncode == 0
  killed = tmp_path / "killed"
  proc = subprocess.Popen([sys.executable, "-m", "experiments.train", *args,
                           f"--workdir={killed}"], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  rng = np.random.default_rng()
  deadline = time.time() + 120
  while time.time() < deadline and not (killed / "checkpoints" / "10").exists():
    time.sleep(0.05)
  time.sleep(float(rng.uniform(0.0, 1.0)))
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert _cli(*args, f"--workdir={killed}").returncode == 0
  config = tiny_config()
  del config
  a = Checkpointer(str(full))
  b = Checkpointer(str(killed))
  assert a.latest_step() == b.latest_step() == 60
  import orbax.checkpoint as ocp
  ta = ocp.StandardCheckpointer().restore(os.path.join(a.directory, "60", "default"))
  tb = ocp.StandardCheckpointer().restore(os.path.join(b.directory, "60", "default"))
  for x, y in zip(jax.tree.leaves(ta), jax.tree.leaves(tb)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert (full / "results.json").read_text() == (killed / "results.json").read_text()

"""Runs survive crashes and bad input: corrupt checkpoints, kill -9, malformed CLI flags."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from lengthgen import analysis, build, train, workdir
from lengthgen.checkpointing import (DIGEST_FILE, CheckpointMismatch, CheckpointWarning,
                                     Checkpointer)
from lengthgen.config import ConfigError
from conftest import ROOT, tiny_config


def _corrupt(step_dir):
  """Truncates every file of a checkpoint, as a crash in the middle of a write could."""
  for root, _, files in os.walk(step_dir):
    for name in files:
      with open(os.path.join(root, name), "r+b") as f:
        f.truncate(max(0, os.path.getsize(f.name) // 3))


@pytest.mark.slow  # the fallback to the previous checkpoint is also checked in the default run by
# test_damaged_checkpoint_is_detected_not_restored
@pytest.mark.integration
def test_corrupt_checkpoint_falls_back_to_previous(tmp_path):
  config = tiny_config(train=dict(steps=8, batch_size=8, max_length=6, checkpoint_every=4,
                                  log_every=4))
  train.prepare_workdir(config, str(tmp_path))
  _, params_at_8 = train.train(config, str(tmp_path))
  ckpt = Checkpointer(str(tmp_path))
  assert ckpt.all_steps() == [4, 8]
  _corrupt(os.path.join(ckpt.directory, "8"))
  state = workdir.initial_state(build.setup(config), build.make_optimizer(config.train))
  with pytest.warns(CheckpointWarning, match="skipping checkpoint step 8"):
    step, _ = ckpt.restore_latest(state)
  assert step == 4
  assert os.path.isdir(os.path.join(ckpt.directory, "8.corrupt"))  # kept, not deleted
  # Training again resumes from step 4 and reaches the same parameters as before.
  _, params = train.train(config, str(tmp_path))
  chex.assert_trees_all_equal(params_at_8, params)


def _cli(*args, timeout=120, module="lengthgen.cli"):
  """``python -m lengthgen.cli`` (``lengthgen-train``) in the checkout; ``module`` may be the
  checkout's shim ``experiments.train``."""
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,message", [
    (["--config=demo:tiny", "--config.model.positional=ropee"],
     "config.model.positional: unknown value 'ropee'"),
    (["--config=demo:tiny", "--config.train.steps=-3"], "config.train.steps: must be >= 1"),
    (["--config=experiments/configs/demo.py:huge"], "unknown preset 'huge'"),
    (["--config=experiments/configs/nothere.py"], "experiments/configs/nothere.py not found, "
     "and 'experiments/configs/nothere.py' is not a config name (in "
     "--config=experiments/configs/nothere.py); config names: abacus_addition, chomsky"),
    (["--config=demo:tiny", "--config.model.layers=3"],
     "unknown config field config.model.layers (in --config.model.layers=3); valid fields of "
     "config.model: attention_implementation"),
    (["--config=demo:tiny", "--config.model.num_layers=abc"], "--config.model.num_layers=abc"),
])
@pytest.mark.integration
def test_cli_rejects_bad_input_with_clear_message(tmp_path, args, message):
  result = _cli(*args, f"--workdir={tmp_path}")
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]


@pytest.mark.integration
def test_cli_refuses_workdir_with_other_config(tmp_path):
  # Through the checkout's shim and config path, which users and docs still use.
  train.prepare_workdir(tiny_config(), str(tmp_path))
  result = _cli("--config=experiments/configs/demo.py:tiny", f"--workdir={tmp_path}",
                module="experiments.train")
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
  args = ["--config=demo:tiny", "--config.train.steps=60",
          "--config.train.checkpoint_every=5"]
  full = tmp_path / "full"
  assert _cli(*args, f"--workdir={full}").returncode == 0
  killed = tmp_path / "killed"
  proc = subprocess.Popen([sys.executable, "-m", "lengthgen.cli", *args,
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
  chex.assert_trees_all_equal(ta, tb)
  # Everything but the wall-clock compute record is equal.
  without_compute = lambda p: {k: v for k, v in json.loads(p.read_text()).items()
                               if k != "compute"}
  assert without_compute(full / "results.json") == without_compute(killed / "results.json")
  # The compute record says which part of the run it timed.
  resumed = lambda p: json.loads(p.read_text())["compute"]["resumed_from_step"]
  assert resumed(full / "results.json") == 0 and resumed(killed / "results.json") >= 10


def _listing(path) -> dict[str, bytes]:
  """Every file under ``path`` with its bytes (to assert that nothing moved or changed)."""
  out = {}
  for root, _, files in os.walk(path):
    for name in files:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


_SHORT = dict(steps=8, batch_size=8, max_length=6, warmup_steps=2, checkpoint_every=4,
              log_every=4)


@pytest.mark.integration
def test_checkpoint_that_does_not_fit_the_model_is_never_renamed(tmp_path):
  config = tiny_config(train=_SHORT)
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  before = _listing(tmp_path)
  # config.json edited to another depth, rerun with that depth: the checkpoints do not fit.
  path = tmp_path / "config.json"
  edited = json.loads(path.read_text())
  edited["model"]["num_layers"] = 3
  path.write_text(json.dumps(edited, indent=2))
  before["config.json"] = path.read_bytes()
  deeper = tiny_config(model=dict(num_layers=3, width=32, num_heads=2), train=_SHORT)
  with pytest.raises(CheckpointMismatch, match=r"checkpoint step 8 .* does not fit the model "
                     r"being restored \(nothing was renamed or retrained\):\n  params/block_2"):
    train.train_and_evaluate(deeper, str(tmp_path), verbose=False)
  after = _listing(tmp_path)
  after.pop(".lock", None), before.pop(".lock", None)
  assert after == before
  with pytest.raises(CheckpointMismatch):  # notebooks and fine-tuning take the same path
    analysis.TrainedRun(str(tmp_path))


@pytest.mark.integration
def test_no_non_finite_state_is_ever_checkpointed(tmp_path):
  config = tiny_config(train=dict(steps=12, batch_size=8, max_length=6, warmup_steps=0,
                                  learning_rate=1e6, checkpoint_every=1, log_every=1))
  workdir.prepare_workdir(config, str(tmp_path))
  with pytest.raises(train.NonFiniteLoss, match=r"stopping"):
    train.train(config, str(tmp_path))
  ckpt = Checkpointer(str(tmp_path))
  state = workdir.initial_state(build.setup(config), build.make_optimizer(config.train))
  for step in ckpt.all_steps():
    restored = ckpt._manager.restore(step, args=ocp.args.StandardRestore(state))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored)), step


@pytest.mark.integration
def test_damaged_checkpoint_is_detected_not_restored(tmp_path):
  config = tiny_config(train=_SHORT)
  workdir.prepare_workdir(config, str(tmp_path))
  _, params_at_8 = train.train(config, str(tmp_path))
  step_dir = tmp_path / "checkpoints" / "8"
  data_file = max((p for p in step_dir.rglob("*") if p.is_file() and p.name != DIGEST_FILE),
                  key=lambda p: p.stat().st_size)
  with open(data_file, "r+b") as f:  # 4 KiB of garbage inside the largest data file
    f.seek(min(64, data_file.stat().st_size // 2))
    f.write(np.random.default_rng(0).bytes(4096))
  with pytest.warns(CheckpointWarning, match=r"skipping checkpoint step 8 .*files differ from "
                    r"their digests"):
    _, params = train.train(config, str(tmp_path))
  assert (tmp_path / "checkpoints" / "8.corrupt").is_dir()
  chex.assert_trees_all_equal(params_at_8, params)  # retrained from step 4 to the same end


def test_workdir_lock_refuses_a_second_writer_and_takes_over_a_stale_one(tmp_path, caplog):
  with workdir.lock(str(tmp_path)):
    with workdir.lock(str(tmp_path)):  # nested in one process: allowed
      pass
    code = ("import sys; from lengthgen import workdir\n"
            f"with workdir.lock({str(tmp_path)!r}): pass\n")
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert other.returncode != 0
    assert f"workdir {tmp_path} is in use by process {os.getpid()}" in other.stderr
  (tmp_path / ".lock").write_text("process 999999 on elsewhere (since 2026-01-01 00:00:00)")
  with caplog.at_level("INFO"), workdir.lock(str(tmp_path)):  # named, but no process holds it
    pass
  assert "Taking over the lock of" in caplog.text
  assert (tmp_path / ".lock").read_text() == ""


def test_disk_full_names_the_disk_and_the_last_good_checkpoint(tmp_path, monkeypatch):
  config = tiny_config(train=_SHORT)
  workdir.prepare_workdir(config, str(tmp_path))
  train.train(config, str(tmp_path), until=4)
  real = Checkpointer.save

  def full(self, step, state):
    if step > 4:
      self._manager.save = lambda *a, **k: (_ for _ in ()).throw(
          OSError(errno.ENOSPC, "No space left on device"))
    return real(self, step, state)

  monkeypatch.setattr(Checkpointer, "save", full)
  with pytest.raises(train.DiskFull, match=r"no space left on the device while saving "
                     r"checkpoint step 8 in .*checkpoints; the last good checkpoint is step 4"):
    train.train(config, str(tmp_path))


def test_unreadable_config_json_is_a_clear_error_and_overwrite_gets_past_it(tmp_path):
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(ConfigError, match=r"config.json is not a readable config .*--new_run"):
    workdir.prepare_workdir(tiny_config(), str(tmp_path))
  workdir.prepare_workdir(tiny_config(), str(tmp_path), overwrite=True)
  assert json.loads((tmp_path / "config.json").read_text())["task"] == "copy"


@pytest.mark.integration
def test_rerun_of_a_finished_workdir_keeps_one_eval_row(tmp_path):
  config = tiny_config(train=_SHORT)
  first = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  second = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert first["eval"] == second["eval"]
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if r["split"] == "eval"] == [8]


@pytest.mark.integration
@pytest.mark.parametrize("args,message", [
    (["--config.train.steps=abc"], "--config.train.steps=abc"),
    (["--config.train.batch_size=2.5"], "--config.train.batch_size=2.5"),
    (["--config.train.learning_rate=fast"], "--config.train.learning_rate=fast"),
    (["--config=demo:tinyy"], "unknown preset 'tinyy' of demo.py; valid "
     "presets: tiny, rope"),
    (["--config.model.kind=encoder"], "config.model.kind: task 'copy' is a decoder task"),
    (["--config.train.init_from=/nonexistent/parent"], "config.train.init_from: "
     "/nonexistent/parent is not a workdir"),
])
def test_cli_errors_are_one_message_and_write_nothing(tmp_path, args, message):
  wd = tmp_path / "wd"
  result = _cli("--config=demo:tiny", *args, f"--workdir={wd}")
  assert result.returncode != 0
  assert message in result.stderr, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert not (wd / "config.json").exists()


def test_batch_not_divisible_by_devices_is_refused_before_the_workdir(tmp_path, monkeypatch):
  monkeypatch.setattr(jax, "device_count", lambda: 3)
  with pytest.raises(ConfigError, match=r"config.train.batch_size: 8 is not divisible by the 3 "
                     r"devices that train data parallel; use a multiple of 3"):
    train.train_and_evaluate(_undivided(), str(tmp_path / "wd"))
  assert not (tmp_path / "wd").exists()


def _undivided():
  """tiny_config without its own validation (which the patched device count would fail)."""
  from lengthgen.config import ExperimentConfig
  return ExperimentConfig.from_dict({"task": "copy", "model": dict(num_layers=1, width=32,
                                                                   num_heads=2),
                                     "train": dict(steps=4, batch_size=8, warmup_steps=1)})

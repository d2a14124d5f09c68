"""Sweeps on every engine (lengthgen.sweeps): the same grid point trained through local
processes, a local Ray cluster and submitit's local executor writes the same results.json;
the driver's failures, resumption, interruption and report, with a stand-in trainer."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT
from lengthgen import sweeps
from lengthgen.sweeps import cli, grid, report

# One tiny point: demo.py:tiny for 3 steps (a checkpoint at the end), evaluated at 1..10.
POINT_FLAGS = ["--config=demo:tiny", "--encodings=rope", "--set=train.steps=3"]
POINT = "copy_rope_softmax_s0"


def _results(sweep_dir) -> dict:
  """The point's results.json without its wall-clock compute record."""
  with open(os.path.join(sweep_dir, POINT, "results.json")) as f:
    return {k: v for k, v in json.load(f).items() if k != "compute"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The point trained by the local engine: the results every engine must reproduce.

  Trained once per test session: under pytest-xdist the workers share it through the
  session's common temporary directory (the first to take the lock trains it).
  """
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the session's directory, above every worker's own
  d = root / "sweep_engines_reference"
  with open(root / "sweep_engines_reference.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (d / POINT / "results.json").exists():
      cli.main([*POINT_FLAGS, f"--dir={d}"])
  return {"dir": str(d), "results": _results(d)}


@pytest.mark.integration
def test_local_engine_writes_the_report_logs_and_tensorboard(reference):
  d = reference["dir"]
  for name in ("summary.md", "summary.csv", "leaderboard.md", "leaderboard.png",
               "accuracy_vs_length_copy_alphabet_size-16.png", f"{POINT}.log"):
    assert os.path.getsize(os.path.join(d, name)) > 0, name
  assert "| copy[alphabet_size=16] | 1 | rope |" in open(os.path.join(d, "leaderboard.md")).read()
  assert os.listdir(os.path.join(d, POINT, "tensorboard"))
  assert "step 3/3" in open(os.path.join(d, f"{POINT}.log")).read()
  assert not [f for f in os.listdir(d) if ".tmp" in f]


@pytest.mark.integration
def test_ray_engine_reproduces_the_local_results(reference, tmp_path, monkeypatch):
  """A local Ray cluster, started by the engine itself (no address): one task per point."""
  import ray  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv("RAY_ADDRESS", raising=False)
  cli.main([*POINT_FLAGS, f"--dir={tmp_path}", "--engine=ray", "--cpus_per_point=1"])
  assert not ray.is_initialized()  # the engine shut down the Ray it started
  assert _results(tmp_path) == reference["results"]
  assert "step 3/3" in (tmp_path / f"{POINT}.log").read_text()


@pytest.mark.integration
def test_submitit_engine_reproduces_the_local_results(reference, tmp_path):
  """submitit's local executor: the SLURM engine's job array, without a cluster."""
  cli.main([*POINT_FLAGS, f"--dir={tmp_path}", "--engine=slurm", "--slurm_cluster=local",
            "--slurm_timeout_min=10"])
  assert _results(tmp_path) == reference["results"]
  assert "step 3/3" in (tmp_path / f"{POINT}.log").read_text()
  job_logs = [f for job in (tmp_path / "submitit").iterdir() for f in os.listdir(job)
              if f.endswith("_log.out")]
  assert len(job_logs) == 1  # one job, with submitit's own log


# ---- the driver, with a stand-in trainer (no JAX): fast ----

_FAKE_TRAINER = '''
import json, os, shutil, sys, time
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)
wd = args["workdir"]
name = os.path.basename(wd)
os.makedirs(wd, exist_ok=True)
with open(os.path.join(wd, "pid"), "w") as f:
  f.write(str(os.getpid()))
print("step 1/2  loss 1.0", flush=True)
if os.environ.get("FAKE_SLEEP", "-") in name:
  time.sleep(600)
attempts = os.path.join(wd, "attempts")
with open(attempts, "a") as f:
  f.write("x")
if os.environ.get("FAKE_HANG_ONCE", "-") in name and os.path.getsize(attempts) == 1:
  time.sleep(600)
if os.environ.get("FAKE_FAIL", "-") in name:
  print("error: boom in " + name, file=sys.stderr)
  sys.exit(3)
shutil.copy(os.path.join(os.environ["FAKE_CONFIGS"], name + ".json"),
            os.path.join(wd, "config.json"))
acc = 1.0 if "nope" in name else 0.5
res = {"task": "copy", "positional": args["config.model.positional"], "normalizer": "softmax",
       "model": "decoder", "train_lengths": [1, 4], "steps": 2, "seed": 0,
       "eval": [{"length": 4, "exact_match": 1.0, "token_accuracy": 1.0, "num_examples": 8},
                {"length": 8, "exact_match": acc, "token_accuracy": acc, "num_examples": 8}],
       "score": {"metric": "exact_match", "in_distribution": 1.0, "out_of_distribution": acc}}
with open(os.path.join(wd, "results.json"), "w") as f:
  json.dump(res, f)
'''

_GRID = ["--config=demo:tiny", "--encodings=nope,rope"]
# the sweep command in a fresh process, its points run by the stand-in trainer
_DRIVER = [sys.executable, "-c", "from lengthgen.sweeps import cli, grid; "
           "grid.TRAIN_MODULE = 'lgfake'; cli.run()"]


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
  """Points run ``lgfake`` instead of lengthgen-train: it writes the config.json the point
  would write and a results.json, or fails (FAKE_FAIL), hangs (FAKE_SLEEP) or hangs on its
  first attempt only (FAKE_HANG_ONCE) on the points whose names contain the variable's
  value."""
  src = tmp_path / "fake"
  src.mkdir()
  (src / "lgfake.py").write_text(textwrap.dedent(_FAKE_TRAINER))
  configs_dir = tmp_path / "configs"
  configs_dir.mkdir()
  for name, overrides in sweeps.grid_points(["nope", "rope"], ["softmax"], ["copy"], [0]):
    (configs_dir / f"{name}.json").write_text(json.dumps(
        grid.resolved_config("demo:tiny", overrides)))
  monkeypatch.setattr(grid, "TRAIN_MODULE", "lgfake")  # what plan() puts in the points
  monkeypatch.setenv("PYTHONPATH", str(src))
  monkeypatch.setenv("FAKE_CONFIGS", str(configs_dir))
  return tmp_path / "sweep"


def test_a_failed_point_is_reported_and_the_rerun_retries_only_it(fake_trainer, monkeypatch,
                                                                  caplog):
  d = fake_trainer
  monkeypatch.setenv("FAKE_FAIL", "rope")
  with pytest.raises(SystemExit, match=(
      r"1 grid point\(s\) failed; rerun the same command to retry them:\n  "
      rf"copy_rope_softmax_s0 failed \(exit 3; log {d}/copy_rope_softmax_s0\.log\): "
      r"error: boom in copy_rope_softmax_s0")):
    cli.main([*_GRID, f"--dir={d}", "--parallel=2"])
  # the other point finished, and the report holds it
  assert (d / "copy_nope_softmax_s0" / "results.json").exists()
  assert "| copy[alphabet_size=16] | nope |" in (d / "summary.md").read_text()
  monkeypatch.delenv("FAKE_FAIL")
  with caplog.at_level("INFO"):
    rows = cli.main([*_GRID, f"--dir={d}"])
  assert "skip copy_nope_softmax_s0 (finished)" in caplog.text
  assert "done copy_rope_softmax_s0" in caplog.text and "done copy_nope" not in caplog.text
  assert sorted(r["positional"] for r in rows) == ["nope", "rope"]
  log = (d / "copy_rope_softmax_s0.log").read_text()
  assert log.count("# ") >= 4 and "error: boom" in log  # both attempts, each with its header


def test_an_engine_error_is_a_failure_of_that_point(tmp_path, monkeypatch):
  class Lost(sweeps.LocalEngine):
    def _poll(self, handles, timeout):  # every trainer vanishes without an exit status
      for proc in handles.values():
        proc.wait()
      return {name: (None, "WorkerCrashedError: the node died") for name in handles}

  monkeypatch.setattr(grid, "TRAIN_MODULE", "this_module_does_not_exist")
  points = list(sweeps.grid_points(["nope"], ["softmax"], ["copy"], [0]))
  result = sweeps.run_sweep(str(tmp_path), "demo:tiny", points, Lost())
  [outcome] = result.failed
  assert outcome.returncode is None and not result.rows
  from lengthgen.sweeps.driver import failure_message  # pylint: disable=g-import-not-at-top
  assert failure_message(outcome).startswith(
      f"copy_nope_softmax_s0 failed (WorkerCrashedError: the node died; log {tmp_path}/")


@pytest.mark.integration
def test_interrupted_driver_keeps_finished_points_and_stops_the_rest(fake_trainer):
  d = fake_trainer
  env = {**os.environ, "FAKE_SLEEP": "rope", "JAX_PLATFORMS": "cpu"}
  driver = subprocess.Popen([*_DRIVER, *_GRID, f"--dir={d}", "--parallel=2"], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True)
  pid_file = d / "copy_rope_softmax_s0" / "pid"
  deadline = time.time() + 120
  while time.time() < deadline and not (
      pid_file.exists() and (d / "copy_nope_softmax_s0" / "results.json").exists()):
    time.sleep(0.2)
  time.sleep(1.0)  # the driver sees the finished point
  driver.send_signal(signal.SIGTERM)
  _, err = driver.communicate(timeout=60)
  assert driver.returncode != 0 and "interrupted: stopped 1 running trainer(s)" in err
  with pytest.raises(ProcessLookupError):  # the hanging trainer was stopped
    os.kill(int(pid_file.read_text()), 0)
  assert not (d / "summary.md").exists() and not [f for f in os.listdir(d) if ".tmp" in f]
  # the rerun completes it, skipping the finished point
  env.pop("FAKE_SLEEP")
  rerun = subprocess.run([*_DRIVER, *_GRID, f"--dir={d}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
  assert rerun.returncode == 0, rerun.stderr
  assert "skip copy_nope_softmax_s0 (finished)" in rerun.stderr
  assert "| rope |" in (d / "summary.md").read_text()


def test_an_interrupted_report_leaves_the_old_files_whole(tmp_path, monkeypatch):
  report.write_whole(str(tmp_path / "summary.md"), "old summary\n")

  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(report.plotting, "plot_leaderboard", interrupted)
  rows = [{"task": "copy", "options": "", "positional": "nope", "positions": "default",
           "normalizer": "softmax", "model": "decoder", "num_seeds": 1, "seeds": [0],
           "in_mean": 1.0, "in_std": 0.0, "out_mean": 0.5, "out_std": 0.0, "curve": [],
           "seconds": None, "device": None}]
  report.write_whole(str(tmp_path / "leaderboard.png"), "old figure")
  with pytest.raises(KeyboardInterrupt):
    report.write_leaderboard(rows, str(tmp_path / "leaderboard"), header="# t")
  assert (tmp_path / "leaderboard.png").read_text() == "old figure"
  assert (tmp_path / "leaderboard.md").read_text().startswith("# t")  # written before
  assert (tmp_path / "summary.md").read_text() == "old summary\n"
  assert sorted(os.listdir(tmp_path)) == ["leaderboard.md", "leaderboard.png", "summary.md"]


def test_vmapped_seeds_are_one_task_and_every_engine_is_registered():
  [point] = sweeps.plan("/tmp/unused_sweep", "demo:tiny", sweeps.grid_points(
      ["nope"], ["softmax"], ["copy"], [0, 1, 2], vmap_seeds=True)).todo
  assert point.name == "copy_nope_softmax_s0x3"
  assert "--config.train.num_seeds=3" in point.args
  assert point.command()[1:3] == ["-m", "lengthgen.cli"]
  assert os.path.isabs(point.args[0].split("=", 1)[1].split(":")[0])  # runs in any directory
  assert sorted(cli.ENGINES) == ["local", "ray", "slurm"]
  with pytest.raises(SystemExit):
    cli.main(["--config=demo:tiny", "--dir=/tmp/unused_sweep", "--engine=dask"])


def test_nothing_in_lengthgen_imports_the_sweeps():
  from test_architecture import import_graph  # pylint: disable=g-import-not-at-top
  graph = import_graph()
  users = sorted(m for m, deps in graph.items() if not m.startswith("lengthgen.sweeps")
                 and any(d.startswith("lengthgen.sweeps") for d in deps))
  assert users == []


def test_the_readmes_sweep_commands_parse():
  """Every ``lengthgen-sweep`` command in the README takes flags the command has."""
  import shlex  # pylint: disable=g-import-not-at-top
  text = open(os.path.join(ROOT, "README.md")).read().replace("\\\n", " ")
  commands = [line.split("#")[0].split() for line in text.splitlines()
              if line.strip().startswith("lengthgen-sweep ")]
  assert len(commands) >= 3, "README: the local, Ray and SLURM sweep commands"
  engines = set()
  for words in commands:
    a = cli.parser().parse_args(shlex.split(" ".join(words[1:])))
    engines.add(a.engine)
  assert engines == {"local", "ray", "slurm"}


@pytest.mark.slow
def test_a_timed_out_slurm_job_is_requeued_and_its_point_completes(fake_trainer, monkeypatch):
  """submitit's local executor signals the job before its time limit, as SLURM does: the job
  is requeued and the point's trainer runs again (resuming, for lengthgen-train)."""
  from lengthgen.sweeps.slurm import SlurmEngine  # pylint: disable=g-import-not-at-top
  d = fake_trainer
  monkeypatch.setenv("FAKE_HANG_ONCE", "nope")
  points = list(sweeps.grid_points(["nope"], ["softmax"], ["copy"], [0]))
  engine = SlurmEngine(str(d / "submitit"), cluster="local",
                       parameters={"timeout_min": 1, "signal_delay_s": 50})
  result = sweeps.run_sweep(str(d), "demo:tiny", points, engine)
  [outcome] = result.outcomes
  assert outcome.ok, outcome
  assert (d / "copy_nope_softmax_s0" / "attempts").read_text() == "xx"
  assert (d / "copy_nope_softmax_s0.log").read_text().count("# on ") == 2


@pytest.mark.slow
def test_interrupting_a_ray_sweep_stops_its_tasks(fake_trainer):
  d = fake_trainer
  env = {**os.environ, "FAKE_SLEEP": "rope", "JAX_PLATFORMS": "cpu"}
  env.pop("RAY_ADDRESS", None)
  driver = subprocess.Popen([*_DRIVER, *_GRID, f"--dir={d}", "--engine=ray"], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True)
  pid_file = d / "copy_rope_softmax_s0" / "pid"
  deadline = time.time() + 180
  while time.time() < deadline and not (
      pid_file.exists() and (d / "copy_nope_softmax_s0" / "results.json").exists()):
    time.sleep(0.5)
  time.sleep(2.0)
  driver.send_signal(signal.SIGINT)  # Ctrl-C
  _, err = driver.communicate(timeout=120)
  assert "interrupted: stopped 1 running trainer(s)" in err, err[-2000:]
  deadline = time.time() + 30
  while True:  # the task's trainer dies with its worker
    try:
      os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
      break
    assert time.time() < deadline, "the Ray task's trainer still runs"
    time.sleep(0.5)

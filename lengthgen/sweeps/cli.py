"""The ``lengthgen-sweep`` command: a grid (encodings x positions x normalizers x tasks x
seeds) of ``lengthgen-train`` runs into one directory, through a chosen engine.

    lengthgen-sweep --config=demo:tiny --dir=/tmp/sweep --encodings=nope,rope --seeds=0,1 \\
        --set=train.steps=50                                  # local processes, one at a time
    lengthgen-sweep ... --engine=ray --ray_address=auto --gpus_per_point=1     # a Ray cluster
    lengthgen-sweep ... --engine=slurm --slurm_partition=gpu --gpus_per_point=1 # a job array

``--config`` is a config name or file with its presets, as for ``lengthgen-train``. One
workdir per grid point (``<task>_<encoding>[_<positions>]_<normalizer>_s<seed>``), its output
in ``<dir>/<name>.log``. With ``--vmap_seeds`` the seeds of a grid point train in one program
(``train.num_seeds``, vmapped: one workdir ``..._s<first>x<count>``, one task of the engine).
Resumable: finished points are skipped (a finished point with another config stops the sweep
before anything trains, unless ``--new_run_changed`` retrains it with ``--new_run``, keeping
the old run under previous_runs/); interrupted and failed ones run again, resuming from
their checkpoints. A failed point is reported with its log and does not stop the others.
Interrupting the sweep (Ctrl-C, SIGTERM) stops its trainers. At the end the sweep writes its
report (``lengthgen.sweeps.report``): summary.md, summary.csv, accuracy_vs_length_*.png,
leaderboard.md and leaderboard.png, each replaced whole. ``tensorboard --logdir DIR`` shows
every run of the sweep side by side.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from lengthgen import analysis, configs, metrics
from lengthgen.sweeps.driver import SweepError, failure_message, run_sweep
from lengthgen.sweeps.engine import Engine, LocalEngine
from lengthgen.sweeps.grid import config_task, grid_points


def _local(sweep_dir: str, a: argparse.Namespace) -> Engine:
  del sweep_dir
  return LocalEngine(a.parallel)


def _ray(sweep_dir: str, a: argparse.Namespace) -> Engine:
  del sweep_dir
  from lengthgen.sweeps.ray_engine import RayEngine  # pylint: disable=g-import-not-at-top
  return RayEngine(a.parallel, address=a.ray_address or None, cpus_per_point=a.cpus_per_point,
                   gpus_per_point=a.gpus_per_point)


def _slurm(sweep_dir: str, a: argparse.Namespace) -> Engine:
  from lengthgen.sweeps.slurm import SlurmEngine  # pylint: disable=g-import-not-at-top
  gpus = a.gpus_per_point
  if gpus != int(gpus):
    raise ValueError(f"--gpus_per_point={gpus}: SLURM gives whole GPUs")
  params = {"timeout_min": a.slurm_timeout_min, "cpus_per_task": max(1, int(a.cpus_per_point))}
  if gpus:
    params["gpus_per_node"] = int(gpus)
  if a.slurm_mem_gb:
    params["mem_gb"] = a.slurm_mem_gb
  if a.slurm_partition:
    params["slurm_partition"] = a.slurm_partition
  if a.slurm_setup:
    params["slurm_setup"] = list(a.slurm_setup)
  if a.slurm_option:
    params["slurm_additional_parameters"] = dict(kv.split("=", 1) for kv in a.slurm_option)
  return SlurmEngine(os.path.join(sweep_dir, "submitit"), a.parallel,
                     cluster=a.slurm_cluster, parameters=params)


# engine name -> builder(sweep directory, parsed flags)
ENGINES = {"local": _local, "ray": _ray, "slurm": _slurm}


def _split(s: str) -> list[str]:
  return [x for x in s.split(",") if x]


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="lengthgen-sweep", description="A grid of lengthgen-train runs (encodings x "
      "positions x normalizers x tasks x seeds) into one directory, through an engine: local "
      "processes, a Ray cluster or a SLURM job array.")
  p.add_argument("--config", required=True, help="config name or file[:presets]")
  p.add_argument("--dir", required=True, help="sweep directory")
  p.add_argument("--encodings", default="nope")
  p.add_argument("--positions", default="default",
                 help="position samplers, e.g. default,randomized")
  p.add_argument("--normalizers", default="softmax",
                 help="normalizers, each with +modifiers, e.g. softmax,ssmax+qk_norm")
  p.add_argument("--tasks", default="",
                 help="tasks, e.g. copy,reverse (default: the config's own task)")
  p.add_argument("--seeds", default="0")
  p.add_argument("--vmap_seeds", action="store_true",
                 help="train the seeds of a grid point in one program (consecutive seeds)")
  p.add_argument("--set", action="append", default=[], help="key=value config override")
  p.add_argument("--new_run_changed", action="store_true",
                 help="retrain finished points whose config changed (the old run is kept "
                 "under previous_runs/) instead of stopping")
  g = p.add_argument_group("engine")
  g.add_argument("--engine", default="local", choices=sorted(ENGINES),
                 help="where each point's process runs (default: local)")
  g.add_argument("--parallel", type=int, default=None,
                 help="points run at once (default: 1 locally; on Ray and SLURM as many as "
                 "the cluster gives)")
  g.add_argument("--cpus_per_point", type=float, default=1, help="ray, slurm: CPUs per point")
  g.add_argument("--gpus_per_point", type=float, default=0,
                 help="ray, slurm: GPUs per point (ray: a fraction shares a GPU)")
  g.add_argument("--ray_address", default="",
                 help="ray: the cluster (auto: this node's running cluster; default: "
                 "$RAY_ADDRESS, else a new local Ray)")
  g.add_argument("--slurm_cluster", default="slurm", choices=["slurm", "local"],
                 help="slurm: submit to SLURM, or run the jobs with submitit's local "
                 "executor (no cluster)")
  g.add_argument("--slurm_partition", default="")
  g.add_argument("--slurm_timeout_min", type=int, default=24 * 60,
                 help="slurm: time limit of each job (a timed-out job is requeued and resumes)")
  g.add_argument("--slurm_mem_gb", type=float, default=0)
  g.add_argument("--slurm_setup", action="append", default=[],
                 help="slurm: a shell line run before each job, e.g. 'source .venv/bin/activate'")
  g.add_argument("--slurm_option", action="append", default=[],
                 help="slurm: an extra sbatch option KEY=VALUE, e.g. account=myproject")
  return p


def _interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> list[dict]:
  """Runs the sweep ``argv`` asks for; returns the report's rows.

  Raises:
    SystemExit: bad flags; finished points with another config (nothing ran); or, after the
      report is written, the points that failed, each with its log.
  """
  p = parser()
  a = p.parse_args(argv)
  seeds = [int(s) for s in _split(a.seeds)]
  if a.vmap_seeds and seeds != list(range(seeds[0], seeds[0] + len(seeds))):
    p.error(f"--vmap_seeds trains consecutive seeds; got --seeds={a.seeds}")
  if a.parallel is not None and a.parallel < 1:
    p.error(f"--parallel must be at least 1; got {a.parallel}")
  if any("=" not in kv for kv in a.slurm_option):
    p.error(f"--slurm_option takes KEY=VALUE; got {a.slurm_option}")
  try:
    configs.resolve(a.config)
  except ValueError as e:
    p.error(str(e))
  points = list(grid_points(_split(a.encodings), _split(a.normalizers),
                            _split(a.tasks) or [config_task(a.config)], seeds,
                            _split(a.positions), a.vmap_seeds))
  extra = [f"--config.{kv}" for kv in a.set]
  os.makedirs(a.dir, exist_ok=True)
  try:
    engine = ENGINES[a.engine](a.dir, a)
  except ValueError as e:
    p.error(str(e))
  main_thread = threading.current_thread() is threading.main_thread()
  previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
  try:
    result = run_sweep(a.dir, a.config, points, engine, extra=extra,
                       new_run_changed=a.new_run_changed)
  except SweepError as e:
    raise SystemExit(str(e)) from None
  finally:
    if main_thread:
      signal.signal(signal.SIGTERM, previous)
    engine.close()
  if result.rows:
    print(analysis.table_markdown(result.rows), flush=True)
  if result.failed:
    raise SystemExit(f"{len(result.failed)} grid point(s) failed; rerun the same command to "
                     "retry them:\n" + "\n".join(f"  {failure_message(o)}"
                                                 for o in result.failed))
  return result.rows


def run() -> None:
  """The console script: log lines on stderr (lengthgen's from INFO), then ``main``."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.FLAGS.mark_as_parsed()  # no absl flags here; absl logs as after parsing them
  metrics.configure_logging()
  main(sys.argv[1:])


if __name__ == "__main__":
  run()

"""The SLURM engine: the grid points as one SLURM job array through submitit, one task per
point (``pip install 'lengthgen[slurm]'``).

    lengthgen-sweep --engine=slurm --slurm_partition=gpu --gpus_per_point=1 ...

Each job runs the point's trainer process, its output in ``<sweep>/<name>.log`` (submitit's
own job logs in ``<sweep>/submitit/<job id>/``); ``--parallel`` caps how many array tasks
run at once. A job that SLURM preempts or times out is requeued by submitit and its trainer
resumes from its own checkpoints. ``cluster="local"`` runs the same jobs as processes on
this machine through submitit's local executor (every point at once): what the tests use,
with no cluster.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Sequence

from lengthgen import extras
from lengthgen.sweeps.engine import Engine, run_point
from lengthgen.sweeps.grid import Point

submitit = extras.require("submitit", "the slurm sweep engine (lengthgen.sweeps.slurm)")


class PointJob(submitit.helpers.Checkpointable):
  """The callable a job runs: one point's trainer. On preemption or timeout submitit calls
  ``checkpoint``, which resubmits the same call; the trainer resumes from its checkpoints."""

  def __call__(self, point: Point, env: Mapping[str, str]) -> int:
    return run_point(point, env)


class SlurmEngine(Engine):
  """Grid points as a job array of ``cluster`` ("slurm"; "local": submitit's local executor;
  None: slurm where ``sbatch`` exists, else local). ``parameters`` are submitit's
  (``timeout_min``, ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition``,
  ``slurm_additional_parameters``, ...); ``parallel`` becomes ``slurm_array_parallelism``."""

  name = "slurm"

  def __init__(self, folder: str, parallel: int | None = None, *, cluster: str | None = None,
               parameters: Mapping[str, Any] | None = None):
    super().__init__(None)  # the array takes every point; SLURM runs `parallel` at once
    self.executor = submitit.AutoExecutor(folder=os.path.join(folder, "%j"), cluster=cluster)
    params = {"name": "lengthgen-sweep", "timeout_min": 24 * 60, "nodes": 1,
              "tasks_per_node": 1, **(parameters or {})}
    if parallel is not None:
      params["slurm_array_parallelism"] = parallel
    self.executor.update_parameters(**params)
    self.folder = folder
    self._cap = parallel

  def describe(self) -> str:
    cap = "" if self._cap is None else f", at most {self._cap} at once"
    return f"submitit ({self.executor.cluster} executor{cap}; job logs in {self.folder})"

  def _start(self, points: Sequence[Point]):
    job = PointJob()
    with self.executor.batch():
      futures = [self.executor.submit(job, p, {}) for p in points]
    return futures

  def _poll(self, handles, timeout):
    deadline = time.time() + timeout
    while True:
      ended = {}
      for name, job in handles.items():
        if not job.done():
          continue
        try:
          ended[name] = (job.result(), None)
        except Exception as e:  # noqa: BLE001 -- a failed or cancelled job is the point's failure
          last = str(e).strip().splitlines()[-1][:300] if str(e).strip() else ""
          ended[name] = (None, f"job {job.job_id} {job.state}: {type(e).__name__}: {last} "
                               f"(job log {job.paths.stderr})")
      if ended or time.time() >= deadline:
        return ended
      time.sleep(min(1.0, max(0.0, deadline - time.time())))

  def _cancel(self, handles):
    for job in handles.values():
      job.cancel(check=False)

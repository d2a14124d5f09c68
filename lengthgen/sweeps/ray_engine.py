"""The Ray engine: each grid point is a Ray task that runs the point's trainer process on
whichever node has the resources (``pip install 'lengthgen[ray]'``).

    ray start --head                      # or an existing cluster
    lengthgen-sweep --engine=ray --ray_address=auto ...

The sweep directory must be on a filesystem every node sees (as for multi-host training),
and lengthgen installed on every node. A task asks for ``cpus_per_point`` CPUs and
``gpus_per_point`` GPUs; a fraction of a GPU (0.25: four points share one) also caps each
process's share of its memory. Tasks are not retried by Ray: a point that fails is reported,
and rerunning the sweep retries it. Ray stops the tasks of a driver that dies, and each
task's trainer dies with its task.
"""

from __future__ import annotations

from typing import Sequence

from lengthgen import extras
from lengthgen.sweeps.engine import Engine, run_point
from lengthgen.sweeps.grid import Point


class RayEngine(Engine):
  """Grid points as Ray tasks on the cluster at ``address`` (None: the ``RAY_ADDRESS``
  cluster, else a new local one; "auto": the running cluster of this node). A Ray already
  initialized in this process is used as it is."""

  name = "ray"

  def __init__(self, parallel: int | None = None, *, address: str | None = None,
               cpus_per_point: float = 1, gpus_per_point: float = 0):
    super().__init__(parallel)
    self._ray = extras.require("ray", "the ray sweep engine (lengthgen.sweeps.ray_engine)")
    self._owns = not self._ray.is_initialized()
    if self._owns:
      self._ray.init(address=address or None, log_to_driver=False)
    env = {}
    if 0 < gpus_per_point < 1:  # points share a GPU: each takes its fraction of the memory
      env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 * gpus_per_point:.3f}"
    self._task = self._ray.remote(run_point).options(
        num_cpus=cpus_per_point, num_gpus=gpus_per_point, max_retries=0)
    self._env = env
    self._resources = (cpus_per_point, gpus_per_point)

  def describe(self) -> str:
    cpus, gpus = self._resources
    nodes = len([n for n in self._ray.nodes() if n.get("Alive")])
    cap = "" if self.parallel is None else f", at most {self.parallel} at once"
    return f"ray ({nodes} node(s), {cpus} CPU and {gpus} GPU per point{cap})"

  def _start(self, points: Sequence[Point]):
    return [self._task.remote(p, self._env) for p in points]

  def _poll(self, handles, timeout):
    refs = list(handles.values())
    ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
    ready = set(ready)
    ended = {}
    for name, ref in handles.items():
      if ref not in ready:
        continue
      try:
        ended[name] = (self._ray.get(ref), None)
      except Exception as e:  # noqa: BLE001 -- a lost worker or node is the point's failure
        ended[name] = (None, f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}")
    return ended

  def _cancel(self, handles):
    for ref in handles.values():
      self._ray.cancel(ref, force=True)  # kills the worker; its trainer dies with it

  def close(self) -> None:
    if self._owns and self._ray.is_initialized():
      self._ray.shutdown()

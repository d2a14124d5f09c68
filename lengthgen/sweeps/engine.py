"""How a sweep runs its grid points: the engine interface, one point's process, and the
local engine (processes on this machine, at most ``parallel`` at once).

Every engine runs each point as its own ``lengthgen-train`` process, with the point's
output in ``<sweep>/<name>.log``; the engines differ only in where that process runs: here
(``LocalEngine``), on a Ray cluster (``lengthgen.sweeps.ray_engine``) or as a SLURM job array
through submitit (``lengthgen.sweeps.slurm``). The command and its config are the same, so
the engine never changes a result.
"""

from __future__ import annotations

import abc
import ctypes
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import time
from typing import Any, Mapping, Sequence

from lengthgen.sweeps.grid import Point


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a point's run ended: ``returncode`` of its trainer (None when the engine lost it:
  a crashed worker, a cancelled or timed-out job, ``error`` says which)."""
  point: Point
  returncode: int | None
  seconds: float
  error: str | None = None

  @property
  def ok(self) -> bool:
    return self.returncode == 0


def _die_with_parent() -> None:
  """In a trainer: receive SIGTERM when the process that started it dies, even by SIGKILL
  (Linux; the trainer then stops, keeping its last checkpoint)."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
  except OSError:
    pass


def start_process(point: Point, env: Mapping[str, str] | None = None) -> subprocess.Popen:
  """Starts the point's trainer with its output appended to ``point.log`` (after a header line
  naming the command, host and time); ``env`` is added to this process's environment."""
  command = point.command()
  os.makedirs(os.path.dirname(point.log) or ".", exist_ok=True)
  with open(point.log, "a") as log:
    log.write(f"# {shlex.join(command)}\n# on {socket.gethostname()}, "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    log.flush()
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            preexec_fn=_die_with_parent)


def stop_processes(procs: Sequence[subprocess.Popen], grace: float = 10.0) -> None:
  """SIGTERM to each running process, SIGKILL to those still running ``grace`` s later."""
  for proc in procs:
    if proc.poll() is None:
      proc.terminate()
  deadline = time.time() + grace
  for proc in procs:
    try:
      proc.wait(timeout=max(0.1, deadline - time.time()))
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()


def run_point(point: Point, env: Mapping[str, str] | None = None) -> int:
  """Runs one point's trainer to its end and returns its exit status: what a Ray task or a
  SLURM job of the sweep executes. An interruption (KeyboardInterrupt, a cancelled task)
  stops the trainer before it propagates."""
  proc = start_process(point, env)
  try:
    return proc.wait()
  except BaseException:
    stop_processes([proc])
    raise


class Engine(abc.ABC):
  """Runs grid points, each in its own process, at most ``parallel`` at once (None: as many
  as the engine's resources allow).

  The driver calls ``submit`` with the points to run, then ``wait`` until ``pending`` is 0;
  ``stop`` ends every queued and running point (an interrupted sweep). Subclasses start,
  poll and cancel their handles.
  """

  name = "engine"

  def __init__(self, parallel: int | None = None):
    if parallel is not None and parallel < 1:
      raise ValueError(f"parallel must be at least 1; got {parallel}")
    self.parallel = parallel
    self._queue: list[Point] = []
    self._started: dict[str, tuple[Point, float, Any]] = {}  # name -> (point, start, handle)

  def submit(self, points: Sequence[Point]) -> None:
    self._queue.extend(points)

  def pending(self) -> int:
    """Points queued or running."""
    return len(self._queue) + len(self._started)

  def running(self) -> int:
    """Points started and not finished (on a cluster, possibly still waiting for a slot)."""
    return len(self._started)

  def wait(self, timeout: float) -> list[Outcome]:
    """Starts queued points while there is room; returns those that ended within about
    ``timeout`` seconds (possibly none)."""
    room = len(self._queue) if self.parallel is None else self.parallel - len(self._started)
    batch, self._queue = self._queue[:max(room, 0)], self._queue[max(room, 0):]
    if batch:
      now = time.time()
      for point, handle in zip(batch, self._start(batch)):
        self._started[point.name] = (point, now, handle)
    ended = self._poll({name: h for name, (_, _, h) in self._started.items()}, timeout)
    out = []
    for name, (returncode, error) in ended.items():
      point, t0, _ = self._started.pop(name)
      out.append(Outcome(point, returncode, time.time() - t0, error))
    return out

  def stop(self) -> int:
    """Cancels every queued and running point; returns how many were running."""
    self._queue.clear()
    handles = {name: h for name, (_, _, h) in self._started.items()}
    self._started.clear()
    if handles:
      self._cancel(handles)
    return len(handles)

  def close(self) -> None:
    """Releases what the engine holds (a Ray connection it opened)."""

  def describe(self) -> str:
    """One line for the sweep's log: the engine and where it runs."""
    return self.name

  @abc.abstractmethod
  def _start(self, points: Sequence[Point]) -> list[Any]:
    """Starts ``points``; one handle per point."""

  @abc.abstractmethod
  def _poll(self, handles: dict[str, Any], timeout: float) -> dict[str, tuple[int | None,
                                                                            str | None]]:
    """name -> (returncode, error) of the handles that ended, waiting up to ``timeout``."""

  @abc.abstractmethod
  def _cancel(self, handles: dict[str, Any]) -> None:
    """Ends the running ``handles`` (each point's trainer stops, keeping its checkpoints)."""


class LocalEngine(Engine):
  """Processes on this machine, ``parallel`` (default 1) at once. With several at once on one
  accelerator, each process may take ``0.9 / parallel`` of its memory."""

  name = "local"

  def __init__(self, parallel: int | None = None):
    super().__init__(1 if parallel is None else parallel)
    self.env = {}
    if self.parallel > 1:  # share one accelerator: no process may take most of its memory
      self.env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = os.environ.get(
          "XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / self.parallel:.3f}")

  def describe(self) -> str:
    return f"local processes, {self.parallel} at once"

  def _start(self, points):
    return [start_process(p, self.env) for p in points]

  def _poll(self, handles, timeout):
    deadline = time.time() + timeout
    while True:
      ended = {name: (proc.returncode, None) for name, proc in handles.items()
               if proc.poll() is not None}
      if ended or time.time() >= deadline:
        return ended
      time.sleep(min(0.2, max(0.0, deadline - time.time())))

  def _cancel(self, handles):
    stop_processes(list(handles.values()))

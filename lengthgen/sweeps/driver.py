"""The resumable sweep driver: plans the grid, runs what is left through an engine, reports
each point as it ends and writes the sweep's report.

Finished points are skipped; every other point runs (an interrupted one resumes from its
checkpoints). A failed point is reported with its log and does not stop the others; the
sweep's report is regenerated from every finished point at the end, failures or not, and
rerunning the same command retries only what is not finished. An interruption (Ctrl-C,
SIGTERM) stops every running point before it propagates; finished points and the report
files are never half-written (each is renamed into place whole).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Sequence

from absl import logging

from lengthgen import extras
from lengthgen.sweeps import report
from lengthgen.sweeps.engine import Engine, Outcome
from lengthgen.sweeps.grid import plan


class SweepError(RuntimeError):
  """The sweep cannot run as asked (finished points hold another config); nothing ran."""


@dataclasses.dataclass
class SweepResult:
  """What a sweep run did: the points it ran (``outcomes``), those it skipped as finished
  and the report's rows (every finished point of the directory, aggregated over seeds)."""
  outcomes: list[Outcome]
  skipped: list[str]
  rows: list[dict]

  @property
  def failed(self) -> list[Outcome]:
    return [o for o in self.outcomes if not o.ok]


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  return (f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600
          else f"{seconds // 60}m{seconds % 60:02d}s")


def last_line(path: str) -> str:
  """The last non-empty line of a log file ('' if none): a failed trainer's error message."""
  try:
    with open(path, "rb") as f:
      f.seek(max(0, os.path.getsize(path) - 4096))
      lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines()]
  except OSError:
    return ""
  return next((line for line in reversed(lines) if line), "")


def failure_message(outcome: Outcome) -> str:
  """``NAME failed (exit 2; log PATH): <its last line>``."""
  why = (f"exit {outcome.returncode}" if outcome.returncode is not None
         else outcome.error or "lost")
  last = last_line(outcome.point.log)
  return f"{outcome.point.name} failed ({why}; log {outcome.point.log})" + (
      f": {last}" if last else "")


class SweepProgress:
  """Points done / running / failed with an ETA: a tqdm bar on a terminal, log lines
  otherwise (one per ended point)."""

  def __init__(self, total: int):
    self.total, self.ok, self.failed = total, 0, 0
    self.t0 = time.time()
    self.bar = None
    if total and sys.stderr.isatty():
      tqdm = extras.require("tqdm", "the sweep's progress bar").tqdm
      self.bar = tqdm(total=total, unit="point", desc="sweep", dynamic_ncols=True)

  def status(self, running: int) -> str:
    ended = self.ok + self.failed
    eta = ""
    if ended and ended < self.total:
      eta = f", ETA {_duration((time.time() - self.t0) / ended * (self.total - ended))}"
    return (f"{ended}/{self.total}: {self.ok} done, {running} running, "
            f"{self.failed} failed{eta}")

  def say(self, message: str, *, warn: bool = False) -> None:
    if self.bar is not None:
      self.bar.write(message, file=sys.stderr)
    elif warn:
      logging.warning("%s", message)
    else:
      logging.info("%s", message)

  def ended(self, outcome: Outcome, running: int) -> None:
    if outcome.ok:
      self.ok += 1
      message = f"done {outcome.point.name} in {_duration(outcome.seconds)}"
    else:
      self.failed += 1
      message = failure_message(outcome)
    if self.bar is not None:
      self.bar.update(1)
      self.bar.set_postfix(running=running, failed=self.failed, refresh=False)
      self.say(message)
    else:
      self.say(f"[{self.status(running)}] {message}", warn=not outcome.ok)

  def refresh(self, running: int) -> None:
    if self.bar is not None:
      self.bar.set_postfix(running=running, failed=self.failed)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def run_sweep(sweep_dir: str, config: str, points, engine: Engine, *,
              extra: Sequence[str] = (), new_run_changed: bool = False,
              poll_seconds: float = 1.0) -> SweepResult:
  """Runs the grid ``points`` ((name, overrides) pairs, ``grid.grid_points``) of config
  ``config`` (a name or file, ``:arg`` optional) into ``sweep_dir`` through ``engine``.

  ``extra`` are ``--config.<field>=<value>`` overrides for every point. Returns what ran;
  failed points are in the result (the caller reports them), and the report is written
  either way.

  Raises:
    SweepError: a finished point holds another config than the sweep would train (unless
      ``new_run_changed``: retrain it with ``--new_run``); nothing was run.
    KeyboardInterrupt: the sweep was interrupted; the running points were stopped.
  """
  os.makedirs(sweep_dir, exist_ok=True)
  todo = plan(sweep_dir, config, points, extra, new_run_changed=new_run_changed)
  if todo.changed:
    raise SweepError(
        f"{len(todo.changed)} finished grid point(s) hold a different config than this "
        "sweep would train; nothing was trained. Rerun with --new_run_changed to retrain "
        "them (their old runs are kept under previous_runs/), or use another --dir.\n"
        + "\n".join(f"{name}:\n{difference}" for name, difference in todo.changed))
  for name in todo.finished:
    logging.info("skip %s (finished)", name)
  outcomes = []
  if todo.todo:
    logging.info("sweep %s: %d point(s) to run, %d finished; %s", sweep_dir, len(todo.todo),
                 len(todo.finished), engine.describe())
    progress = SweepProgress(len(todo.todo))
    try:
      engine.submit(todo.todo)
      while engine.pending():
        ended = engine.wait(poll_seconds)
        progress.refresh(engine.running())
        for outcome in ended:
          outcomes.append(outcome)
          progress.ended(outcome, engine.running())
    except BaseException:
      stopped = engine.stop()
      progress.close()
      logging.warning("interrupted: stopped %d running trainer(s); rerun the same command to "
                      "resume", stopped)
      raise
    progress.close()
  rows = report.summarize(sweep_dir)
  return SweepResult(outcomes, todo.finished, rows)

"""Metrics: the JSONL log of a workdir and its TensorBoard mirror, logging and progress
reporting, and batch accuracies."""

from __future__ import annotations

import json
import logging as std_logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen import extras

SUMMARY_DIR = "tensorboard"  # WORKDIR/tensorboard: the event files of the run


def masked_accuracies(logits_BTV: jax.Array, targets_BT: jax.Array,
                      loss_mask_BT: jax.Array) -> dict[str, jax.Array]:
  """Per-example counts: correct supervised tokens, supervised tokens, all-correct flag."""
  correct = (jnp.argmax(logits_BTV, axis=-1) == targets_BT) & loss_mask_BT
  num = loss_mask_BT.sum(axis=1)
  num_correct = correct.sum(axis=1)
  return {"correct": num_correct, "total": num, "exact": (num_correct == num) & (num > 0)}


def _read_rows(path: str) -> list[tuple[dict, str]]:
  """(row, line) of every readable line of a JSONL file; a line cut short by a crash is
  skipped, and every kept line ends with a newline."""
  out = []
  with open(path) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      out.append((row, line if line.endswith("\n") else line + "\n"))
  return out


def _write_lines(path: str, lines: list[str]) -> None:
  """Replaces the file with ``lines`` through a temporary file (never half of it)."""
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    f.writelines(lines)
  os.replace(tmp, path)


class MetricsLog:
  """Appends one JSON object per line to ``WORKDIR/metrics.jsonl`` and mirrors every row as
  TensorBoard scalars (``<split>/<name>``) in ``WORKDIR/tensorboard/``.

  On resume, lines from steps after the restored checkpoint are dropped, so the log of a
  resumed run reads as if it had never been interrupted; TensorBoard hides the same steps
  (its writer starts with a purge at the first step the log no longer has).
  ``tensorboard=False`` writes the JSONL log alone.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0, tensorboard: bool = True):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.summary_dir = os.path.join(workdir, SUMMARY_DIR) if tensorboard else None
    self._writer = None
    self._purge = resume_step + 1  # TensorBoard hides every event from this step on
    if not os.path.exists(self.path):
      open(self.path, "a").close()
    else:
      _write_lines(self.path, [line for row, line in _read_rows(self.path)
                               if row.get("split") != "train"
                               or row.get("step", 0) <= resume_step])

  def _summaries(self):
    """The TensorBoard writer, opened on first use with its purge step; the rows the log
    keeps from that step on are written again (the purge hides their earlier copies)."""
    if self._writer is None and self.summary_dir is not None:
      self._writer = SummaryWriter(self.summary_dir, purge_step=self._purge)
      for row, _ in _read_rows(self.path):
        if row.get("step", 0) >= self._purge:
          self._writer.row(row)
    return self._writer

  def write(self, step: int, split: str, **values) -> None:
    row = {"step": int(step), "split": split, **{k: _plain(v) for k, v in values.items()}}
    writer = self._summaries()  # opened (rewriting the kept rows) before this row is logged
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    if writer is not None:
      writer.row(row)

  def replace(self, step: int, split: str, **values) -> None:
    """``write``, after dropping earlier rows of the same step and split (a finished run
    evaluated again keeps one evaluation row, in the log and in TensorBoard)."""
    _write_lines(self.path, [line for row, line in _read_rows(self.path)
                             if (row.get("step"), row.get("split")) != (int(step), split)])
    if self._writer is not None:  # a new writer session, purging from this step on
      self.close()
      self._purge = int(step)
    else:
      self._purge = min(self._purge, int(step))
    self.write(step, split, **values)

  def image(self, tag: str, step: int, path: str) -> None:
    """Adds the PNG file ``path`` to TensorBoard as image ``tag`` at ``step``."""
    if self._summaries() is not None:
      self._writer.image(tag, step, path)

  def flush(self) -> None:
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _plain(v):
  try:
    return float(v) if not isinstance(v, (str, int, list, dict)) else v
  except (TypeError, ValueError):
    return str(v)


class SummaryWriter:
  """TensorBoard event files in ``logdir`` through tensorboardX (no TensorFlow needed).

  Events at or after ``purge_step`` written by earlier writers of the same directory are
  hidden by TensorBoard (a resumed run's log reads as an uninterrupted one).
  """

  def __init__(self, logdir: str, *, purge_step: int | None = None, flush_secs: int = 10):
    tensorboardx = extras.require("tensorboardX", "the TensorBoard summaries (lengthgen.metrics)")
    # tensorboardX names a file by the second it opened it: a second writer within the same
    # second would overwrite the first. The nanoseconds keep the names unique and in order
    # (TensorBoard reads a directory's files in name order).
    self._writer = tensorboardx.SummaryWriter(logdir, purge_step=purge_step,
                                              flush_secs=flush_secs,
                                              filename_suffix=f".{time.time_ns():020d}")

  def row(self, row: dict) -> None:
    """One metrics.jsonl row: each number as scalar ``<split>/<name>``, each list of numbers
    (``loss_per_seed``) as ``<split>/<name>/<index>``."""
    step, split = int(row["step"]), row["split"]
    for name, value in row.items():
      if name in ("step", "split"):
        continue
      values = value if isinstance(value, list) else [value]
      for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
          tag = f"{split}/{name}" + (f"/{i}" if isinstance(value, list) else "")
          self._writer.add_scalar(tag, float(v), step)

  def image(self, tag: str, step: int, path: str) -> None:
    from matplotlib import image as mpimg  # pylint: disable=g-import-not-at-top
    pixels = np.asarray(mpimg.imread(path))
    if pixels.dtype != np.uint8:
      pixels = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    self._writer.add_image(tag, pixels[..., :3], step, dataformats="HWC")

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class _OwnInfo(std_logging.Filter):
  """Passes lengthgen's records and everyone's warnings; drops other libraries' INFO lines
  (orbax logs every save and restore, jax its backend probing)."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (record.levelno >= std_logging.WARNING
            or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR))


def configure_logging(verbosity: int = logging.INFO) -> None:
  """For a command-line program: absl's log lines on stderr, lengthgen's from ``verbosity``
  (default INFO: progress and notices), other libraries' from WARNING."""
  logging.use_absl_handler()
  logging.set_verbosity(verbosity)
  handler = logging.get_absl_handler()
  if not any(isinstance(f, _OwnInfo) for f in handler.filters):
    handler.addFilter(_OwnInfo())


class Progress:
  """A tqdm bar on a terminal; periodic log lines (step, loss, learning rate, steps/s, ETA)
  otherwise."""

  def __init__(self, total: int, start: int, log_every: int):
    self.total, self.start, self.log_every = total, start, log_every
    self.t0 = time.time()
    self.bar = None
    if sys.stderr.isatty():
      tqdm = extras.require("tqdm", "the progress bar (lengthgen.metrics)").tqdm
      self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)

  def update(self, done: int, shown: tuple[int, dict[str, float]] | None) -> None:
    """Advances to ``done`` steps; ``shown`` is (step, metrics) read for that earlier step."""
    if self.bar is not None:
      self.bar.update(done - self.bar.n)
      if shown:
        self.bar.set_postfix(loss=f"{shown[1]['loss']:.4f}", refresh=False)
      return
    if shown is not None:
      step, m = shown
      rate = (done - self.start) / max(time.time() - self.t0, 1e-9)
      eta = (self.total - done) / max(rate, 1e-9)
      lr = f"  lr {m['learning_rate']:.3g}" if "learning_rate" in m else ""
      logging.info("step %d/%d  loss %.4f%s  train exact %.3f  %.1f steps/s  ETA %.0fs",
                   step, self.total, m["loss"], lr, m["exact_match"], rate, eta)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


T = TypeVar("T")


def progress(items: Iterable[T], total: int, what: str, *, min_items: int = 20) -> Iterator[T]:
  """Yields ``items`` while showing how far along they are: a tqdm bar on a terminal, a log
  line at every tenth otherwise (with an ETA). Fewer than ``min_items`` show nothing."""
  if total < min_items:
    yield from items
    return
  if sys.stderr.isatty():
    tqdm = extras.require("tqdm", "the progress bar (lengthgen.metrics)").tqdm
    yield from tqdm(items, total=total, desc=what, unit="length", leave=False,
                    dynamic_ncols=True)
    return
  t0, every = time.time(), max(1, total // 10)
  for i, item in enumerate(items, start=1):
    yield item
    if i % every == 0 and i < total:
      eta = (time.time() - t0) / i * (total - i)
      logging.info("%s: %d/%d  ETA %.0fs", what, i, total, eta)

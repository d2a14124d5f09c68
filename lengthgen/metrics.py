"""Metrics: the JSONL log of a workdir, progress reporting, and batch accuracies."""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import jax.numpy as jnp

from lengthgen import extras


def masked_accuracies(logits_BTV: jax.Array, targets_BT: jax.Array,
                      loss_mask_BT: jax.Array) -> dict[str, jax.Array]:
  """Per-example counts: correct supervised tokens, supervised tokens, all-correct flag."""
  correct = (jnp.argmax(logits_BTV, axis=-1) == targets_BT) & loss_mask_BT
  num = loss_mask_BT.sum(axis=1)
  num_correct = correct.sum(axis=1)
  return {"correct": num_correct, "total": num, "exact": (num_correct == num) & (num > 0)}


class MetricsLog:
  """Appends one JSON object per line to ``WORKDIR/metrics.jsonl``.

  On resume, lines from steps after the restored checkpoint are dropped, so the log of a
  resumed run reads as if it had never been interrupted.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0):
    self.path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(self.path):
      open(self.path, "a").close()
    else:
      kept = []
      with open(self.path) as f:
        for line in f:
          try:
            row = json.loads(line)
          except json.JSONDecodeError:
            continue  # a line cut short by a crash
          if row.get("split") != "train" or row.get("step", 0) <= resume_step:
            kept.append(line if line.endswith("\n") else line + "\n")
      with open(self.path, "w") as f:
        f.writelines(kept)

  def write(self, step: int, split: str, **values) -> None:
    row = {"step": int(step), "split": split, **{k: _plain(v) for k, v in values.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")

  def replace(self, step: int, split: str, **values) -> None:
    """``write``, after dropping earlier rows of the same step and split (a finished run
    evaluated again keeps one evaluation row)."""
    with open(self.path) as f:
      lines = f.readlines()
    kept = []
    for line in lines:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if (row.get("step"), row.get("split")) != (int(step), split):
        kept.append(line if line.endswith("\n") else line + "\n")
    with open(self.path, "w") as f:
      f.writelines(kept)
    self.write(step, split, **values)


def _plain(v):
  try:
    return float(v) if not isinstance(v, (str, int, list, dict)) else v
  except (TypeError, ValueError):
    return str(v)


class Progress:
  """A tqdm bar on a terminal; periodic log lines (step, loss, steps/s, ETA) otherwise."""

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
      print(f"step {step}/{self.total}  loss {m['loss']:.4f}  "
            f"train exact {m['exact_match']:.3f}  {rate:.1f} steps/s  ETA {eta:.0f}s",
            flush=True)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()

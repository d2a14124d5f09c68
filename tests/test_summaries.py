"""The TensorBoard mirror of metrics.jsonl, read back with TensorBoard's own event reader:
what TensorBoard shows equals the log, through a resume and a re-evaluation (a trained run's
summaries: tests/test_train.py)."""

from __future__ import annotations

import json

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from lengthgen import metrics


def shown(summary_dir) -> dict[str, list[tuple[int, float]]]:
  """tag -> (step, value) of every scalar TensorBoard shows (orphaned steps purged)."""
  acc = event_accumulator.EventAccumulator(str(summary_dir), purge_orphaned_data=True)
  acc.Reload()
  return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def logged(workdir) -> dict[str, list[tuple[int, float]]]:
  """The same from metrics.jsonl (float32, as TensorBoard stores scalars; a list's items as
  ``<tag>/<index>``)."""
  out = {}
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    row = json.loads(line)
    for k, v in row.items():
      named = ([(f"/{i}", x) for i, x in enumerate(v)] if isinstance(v, list) else [("", v)])
      for suffix, x in named:
        if isinstance(x, (int, float)) and k != "step":
          out.setdefault(f"{row['split']}/{k}{suffix}", []).append(
              (row["step"], float(np.float32(x))))
  return {k: sorted(v) for k, v in out.items()}


def test_tensorboard_shows_what_the_log_keeps_through_resume_and_reevaluation(tmp_path):
  log = metrics.MetricsLog(str(tmp_path))
  for step in range(1, 9):
    log.write(step, "train", loss=10.0 - step, loss_per_seed=[1.0, 2.0])
  log.close()
  log = metrics.MetricsLog(str(tmp_path), resume_step=4)  # crashed after step 8, checkpoint 4
  for step in range(5, 11):
    log.write(step, "train", loss=100.0 - step, loss_per_seed=[3.0, 4.0])
  log.close()
  for score in (0.5, 0.75):  # evaluated, then evaluated again (as a rerun does)
    log = metrics.MetricsLog(str(tmp_path), resume_step=10)
    log.replace(10, "eval", out_of_distribution=score, metric="exact_match")
    log.close()
  seen = shown(tmp_path / "tensorboard")
  assert seen["train/loss"] == [(s, 10.0 - s) for s in range(1, 5)] + [
      (s, 100.0 - s) for s in range(5, 11)]
  assert seen["train/loss_per_seed/1"][-1] == (10, 4.0)
  assert seen["eval/out_of_distribution"] == [(10, 0.75)]
  assert seen == logged(tmp_path)
  (tmp_path / "off").mkdir()
  metrics.MetricsLog(str(tmp_path / "off"), tensorboard=False).write(1, "train", loss=1.0)
  assert not (tmp_path / "off" / "tensorboard").exists()

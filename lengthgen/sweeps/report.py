"""The report of a sweep directory, regenerated at the end of every sweep run.

``summary.md`` / ``summary.csv`` (mean ± std over seeds and the compute of each grid point),
``accuracy_vs_length_<task>[_<option>-<value>...].png`` (the score's metric, exact match
unless the config scores by token accuracy, versus length per method, a band of ± one
standard deviation over seeds), ``token_accuracy_vs_length_<task>...png`` (the same in token
accuracy, for sweeps scored by exact match: how far off the wrong answers are) and ``leaderboard.md`` /
``leaderboard.png`` (the methods ranked per task, the mean reciprocal rank, the task x
method heat map). Each file is written to a temporary name and renamed over the old one, so
an interrupted sweep never leaves half of one.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Sequence

from lengthgen import analysis, extras, plotting


@contextlib.contextmanager
def _replaced(path: str, suffix: str = ""):
  """Yields a temporary path; renamed to ``path`` when the block succeeds, else removed."""
  tmp = f"{path}.tmp{os.getpid()}{suffix}"
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_whole(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through a temporary file (never half a file)."""
  with _replaced(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)


def _figure_name(task: str) -> str:
  """``copy[alphabet_size=16]`` -> ``copy_alphabet_size-16``."""
  return task.replace("[", "_").rstrip("]").replace(",", "_").replace("=", "-")


def plot_sweep(rows: Sequence[dict[str, Any]], sweep_dir: str, *,
               prefix: str = "accuracy_vs_length") -> list[str]:
  """The rows' curves (their ``curve_metric``: the score's metric unless aggregated with
  another) versus length per method (mean over seeds, ± std band), one figure per task and
  task options, ``SWEEP_DIR/<prefix>_<task>.png``; returns the paths written."""
  Figure = extras.require("matplotlib.figure", "the sweep's figures").Figure  # no pyplot
  paths = []
  for task in sorted({analysis.task_label(r) for r in rows}):
    ylabel = " / ".join(sorted({r.get("curve_metric", r.get("metric", "exact_match"))
                                .replace("_", " ")
                                for r in rows if analysis.task_label(r) == task}))
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for r in rows:
      if analysis.task_label(r) != task or not r["curve"]:
        continue
      n, m, s = zip(*r["curve"])
      label = f"{analysis.method_label(r)} (n={r['num_seeds']})"
      ax.plot(n, m, marker="o", ms=3, label=label)
      ax.fill_between(n, [a - b for a, b in zip(m, s)], [a + b for a, b in zip(m, s)],
                      alpha=0.2)
    ax.set(xlabel="length", ylabel=ylabel, title=task, ylim=(-0.02, 1.02))
    ax.legend(fontsize=7)
    path = os.path.join(sweep_dir, f"{prefix}_{_figure_name(task)}.png")
    with _replaced(path, ".png") as tmp:
      fig.savefig(tmp, dpi=100, bbox_inches="tight")
    paths.append(path)
  return paths


def write_leaderboard(rows: Sequence[dict[str, Any]], out: str, *, header: str,
                      mrr_methods: Sequence[str] | None = None) -> dict:
  """``OUT.md`` (``header``, the methods ranked per task by their score beyond training, the
  mean reciprocal rank of ``mrr_methods``, default all) and ``OUT.png`` (the heat map);
  returns the leaderboard (``board``) and the mean reciprocal ranks (``mrr``, None when no
  task has every method)."""
  board = analysis.leaderboard(rows)
  lines = [header, "", f"Ranked per task by {analysis.metric_names(rows)} beyond training (mean ± "
           "std over seeds).", "", analysis.leaderboard_markdown(board)]
  try:
    mrr = analysis.mean_reciprocal_rank(board, mrr_methods)
    which = ", ".join(mrr_methods) if mrr_methods else "every method"
    lines += [f"Mean reciprocal rank of {which}, over the tasks all of them were run on:", "",
              analysis.mrr_markdown(mrr)]
  except ValueError as e:
    mrr = None
    lines += [f"No mean reciprocal rank: {e}.", ""]
  os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
  write_whole(out + ".md", "\n".join(lines))
  with _replaced(out + ".png", ".png") as tmp:
    plotting.plot_leaderboard(board, tmp)
  return {"board": board, "mrr": mrr}


def summarize(sweep_dir: str) -> list[dict[str, Any]]:
  """Writes the sweep's report from its finished points; returns the rows (one per grid
  point, aggregated over seeds). A sweep with no finished point writes nothing."""
  records = analysis.load_sweep(sweep_dir)
  rows = analysis.aggregate_over_seeds(records)
  if not rows:
    return rows
  write_whole(os.path.join(sweep_dir, "summary.md"), analysis.table_markdown(rows))
  write_whole(os.path.join(sweep_dir, "summary.csv"), analysis.table_csv(rows))
  plot_sweep(rows, sweep_dir)
  exact = [r for r in records if r["score"].get("metric", "exact_match") == "exact_match"]
  if exact and all("token_accuracy" in e for r in exact for e in r["eval"]):
    plot_sweep(analysis.aggregate_over_seeds(exact, curve_metric="token_accuracy"), sweep_dir,
               prefix="token_accuracy_vs_length")
  write_leaderboard(rows, os.path.join(sweep_dir, "leaderboard"),
                    header=f"# Leaderboard of {os.path.basename(os.path.abspath(sweep_dir))}")
  return rows

"""Figures drawn from results.json: accuracy versus length with the training range shaded,
and the task x method leaderboard heat map."""

from __future__ import annotations

from lengthgen import extras

extras.require("matplotlib", "lengthgen.plotting")
from matplotlib.figure import Figure  # noqa: E402  (no pyplot: importing never sets a backend)
import numpy as np  # noqa: E402

from lengthgen.analysis import method_label, metric_names  # noqa: E402


def plot_length_generalization(results: dict | list[dict], path: str | None = None, *,
                               labels: list[str] | None = None, ax=None):
  """Exact match (solid) and token accuracy (dashed) versus length for one or more runs.

  Draws on ``ax`` when given (e.g. a notebook's pyplot axes); otherwise on a new figure
  (not registered with pyplot), saved to ``path`` when given. Returns the axes.
  """
  runs = results if isinstance(results, list) else [results]
  own = ax is None
  if own:
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.subplots()
  lo, hi = runs[0]["train_lengths"]
  ax.axvspan(lo - 0.5, hi + 0.5, color="0.9", label="training lengths")
  for i, r in enumerate(runs):
    lengths = [row["length"] for row in r["eval"]]
    label = labels[i] if labels else f"{r['task']} / {r['positional']} / {r['normalizer']}"
    (line,) = ax.plot(lengths, [row["exact_match"] for row in r["eval"]], "-", label=label)
    ax.plot(lengths, [row["token_accuracy"] for row in r["eval"]], "--", color=line.get_color(),
            alpha=0.6)
  ax.set_xlabel("length")
  ax.set_ylabel("exact match (solid), token accuracy (dashed)")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=8, loc="lower left")
  if own:
    fig.tight_layout()
    if path:
      fig.savefig(path, dpi=120)
  return ax


def plot_leaderboard(board: dict[str, list[dict]], path: str | None = None, *,
                     metric: str = "out_mean", fitted: float = 0.95, ax=None):
  """Task x method heat map of ``metric`` (a leaderboard from ``analysis.leaderboard``).

  Rows are tasks, columns methods (``analysis.method_label``), each cell the mean over seeds
  with its rank; a cell whose in-distribution score (the rows' ``metric``: exact match, or
  token accuracy where the config scores by it) is below ``fitted`` is marked
  ``not fit`` (its extrapolation says nothing); a method not run on a task is left blank. Draws on ``ax`` when given,
  otherwise on a new figure saved to ``path`` when given. Returns the axes.
  """
  tasks = list(board)
  methods = sorted({method_label(r) for rs in board.values() for r in rs})
  grid = np.full((len(tasks), len(methods)), np.nan)
  ranks, unfit = {}, set()
  for i, task in enumerate(tasks):
    for r in board[task]:
      j = methods.index(method_label(r))
      grid[i, j] = r[metric]
      ranks[i, j] = r["rank"]
      if r["in_mean"] < fitted:
        unfit.add((i, j))
  own = ax is None
  if own:
    fig = Figure(figsize=(1.1 * len(methods) + 6.5, 0.55 * len(tasks) + 1.8))
    ax = fig.subplots()
  im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
  ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
  ax.set_yticks(range(len(tasks)), tasks)
  for (i, j), rank in ranks.items():
    note = "\nnot fit" if (i, j) in unfit else ""
    ax.text(j, i, f"{grid[i, j]:.2f}\n#{rank}{note}", ha="center", va="center",
            color="w" if grid[i, j] < 0.6 else "k", fontsize=8)
  names = metric_names(r for rs in board.values() for r in rs)
  label = {"out_mean": f"{names} beyond training", "in_mean": f"{names} in distribution"}
  ax.figure.colorbar(im, ax=ax, label=f"{label.get(metric, metric)}\n(mean over seeds)")
  if unfit:
    ax.set_title(f"not fit: in-distribution {names} < {fitted}", fontsize=9)
  if own:
    fig.tight_layout()
    if path:
      fig.savefig(path, dpi=120)
  return ax

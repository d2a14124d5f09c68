"""Figures drawn from results.json: accuracy versus length with the training range shaded."""

from __future__ import annotations

from matplotlib.figure import Figure  # no pyplot: importing lengthgen never sets a backend


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

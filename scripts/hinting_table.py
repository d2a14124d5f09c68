"""The task-hinting table and figure: sort exact match per run, mean ± std over its seeds.

  .venv/bin/python scripts/hinting_table.py --runs='results/task_hinting_cpu/*' \
      --out=results/task_hinting_cpu/summary

Every directory matching ``--runs`` holding a results.json (one run of
``lengthgen-train --config=task_hinting:...``, its seeds trained in one program with
``train.num_seeds``) gives one row: the main task's exact match at the longest training
length, at 2.5x and 5x it (or the nearest evaluated lengths) and averaged over every length
beyond training, each as mean ± std over the seeds; the hint task's own exact match in and
beyond the training lengths; and the compute. ``OUT.md`` is the table (with the command
that regenerates it), ``OUT.png`` the main task's mean exact match versus length, one curve
per run. Both files are replaced whole.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np
from matplotlib.figure import Figure

from lengthgen import analysis


def seed_evals(results: dict, task: str | None = None) -> list[list[dict]]:
  """Per seed, the eval rows of the main task (``task=None``) or of hint ``task``."""
  seeds = analysis.per_seed_records(results)
  return [s["eval"] if task is None else s["tasks"][task]["eval"] for s in seeds]


def at_length(evals: list[list[dict]], length: int) -> tuple[float, float, int]:
  """Mean and std over seeds of exact match at the evaluated length nearest ``length``."""
  lengths = [row["length"] for row in evals[0]]
  nearest = min(lengths, key=lambda n: abs(n - length))
  xs = [next(r["exact_match"] for r in rows if r["length"] == nearest) for rows in evals]
  return float(np.mean(xs)), float(np.std(xs)), nearest


def beyond(evals: list[list[dict]], train_max: int) -> tuple[float, float]:
  xs = [np.mean([r["exact_match"] for r in rows if r["length"] > train_max]) for rows in evals]
  return float(np.mean(xs)), float(np.std(xs))


def hint_scores(results: dict, train_max: int) -> str:
  """``name in / beyond`` for each hint task of the run ('-' without hints)."""
  names = [h if isinstance(h, str) else h["name"] for h in results.get("hints", [])]
  parts = []
  for name in names:
    evals = seed_evals(results, name)
    inside = np.mean([np.mean([r["exact_match"] for r in rows if r["length"] <= train_max])
                      for rows in evals])
    parts.append(f"{name} {inside:.2f} / {beyond(evals, train_max)[0]:.2f}")
  return ", ".join(parts) or "-"


def row(workdir: str) -> dict | None:
  results = analysis.load_results(workdir)
  if results is None:
    return None
  lo, hi = results["train_lengths"]
  evals = seed_evals(results)
  compute = results.get("compute", {})
  return {
      "name": os.path.basename(workdir.rstrip("/")), "results": results, "evals": evals,
      "train_max": hi, "seeds": len(evals),
      "at_train": at_length(evals, hi), "at_2.5x": at_length(evals, int(2.5 * hi)),
      "at_5x": at_length(evals, 5 * hi), "beyond": beyond(evals, hi),
      "hints": hint_scores(results, hi),
      "compute": (f"{compute.get('train_seconds', 0) + compute.get('eval_seconds', 0):.0f} s "
                  f"on {compute.get('device', '?')} (jax {compute.get('jax', '?')}), "
                  f"{compute.get('num_seeds_in_program', 1)} seeds in one program"),
  }


def markdown(rows: list[dict], command: str) -> str:
  fmt = lambda ms: f"{ms[0]:.3f} ± {ms[1]:.3f}"
  first = rows[0]
  lines = [f"Regenerate: `{command}`", "",
           f"| run | seeds | n={first['at_train'][2]} (train max) | n={first['at_2.5x'][2]} "
           f"(2.5x) | n={first['at_5x'][2]} (5x) | mean beyond training | hint (in / beyond) "
           f"| compute |", "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['name']} | {r['seeds']} | {fmt(r['at_train'])} | {fmt(r['at_2.5x'])} | "
                 f"{fmt(r['at_5x'])} | {fmt(r['beyond'])} | {r['hints']} | {r['compute']} |")
  return "\n".join(lines) + "\n"


def figure(rows: list[dict], path: str) -> None:
  fig = Figure(figsize=(6.4, 3.8))
  ax = fig.subplots()
  hi = rows[0]["train_max"]
  ax.axvspan(0.5, hi + 0.5, color="0.9", label="training lengths")
  for r in rows:
    lengths = [e["length"] for e in r["evals"][0]]
    mean = np.mean([[e["exact_match"] for e in rows_] for rows_ in r["evals"]], axis=0)
    ax.plot(lengths, mean, "-", label=f"{r['name']} ({r['seeds']} seeds)")
  ax.set_xlabel("sort length n")
  ax.set_ylabel("exact match (mean over seeds)")
  ax.set_ylim(-0.02, 1.02)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--runs", required=True, help="glob of run directories")
  p.add_argument("--out", required=True, help="writes OUT.md and OUT.png")
  a = p.parse_args()
  rows = [r for d in sorted(glob.glob(a.runs)) if os.path.isdir(d) and (r := row(d))]
  if not rows:
    raise SystemExit(f"no finished runs match {a.runs!r}")
  command = f"python scripts/hinting_table.py --runs={a.runs!r} --out={a.out}"
  with open(a.out + ".md", "w") as f:
    f.write(markdown(rows, command))
  figure(rows, a.out + ".png")
  print(f"wrote {a.out}.md and {a.out}.png")


if __name__ == "__main__":
  main()

"""Context extension on an algorithmic task: RoPE parents trained short, extended by each method.

    python scripts/context_extension.py --out results/context_extension_cpu \
        --steps 2000 --fine_tune_steps 200 --seeds 3,4,5

1. Trains the parent RoPE decoders on copy (n in 1..``--train_max``), the seeds vmapped in one
   program (``train.num_seeds``).
2. For each method, scaled for an extension by ``--factor``: evaluates every parent's
   parameters with the method's encoding (zero-shot), then fine-tunes each seed from its parent
   at n in 1..factor x train_max with the method (``train.init_from``) and evaluates again.
   Evaluation runs to 2 x factor x train_max.
3. With ``--heads``, also trains a pointer head and a vocabulary head on sort.

Writes one workdir per run, ``table.md`` (mean ± std over the seeds) and ``figure.png`` (the
seed-mean curves) under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax
import numpy as np

from lengthgen import analysis, build, evaluate, plotting, train, workdir
from lengthgen.config import ExperimentConfig

METHOD_NAMES = ("rope", "abf_500k", "giraffe_truncate", "pi", "ntk", "yarn", "e2llm", "anchor")


def methods(factor: float, train_tokens: int) -> dict[str, tuple[str, dict, str, dict]]:
  """name -> (positional, options, positions, positions_options) for an extension by ``factor``.

  ``train_tokens`` is the parent's longest training sequence (YaRN's ``train_length``); the
  offset samplers (E^2-LLM, anchor) reach ``factor`` x that many positions.
  """
  if factor < 1:
    raise ValueError(f"--factor must be >= 1, got {factor}")
  offset = int(round(factor * train_tokens))
  return {
      "rope": ("rope", {}, "default", {}),
      "abf_500k": ("rope", {"base": 500000.0}, "default", {}),
      "giraffe_truncate": ("rope", {"truncate_below": 0.05, "zero_below": 0.005}, "default", {}),
      "pi": ("rope_pi", {"scale": factor}, "default", {}),
      "ntk": ("rope_ntk", {"scale": factor}, "default", {}),
      "yarn": ("rope_yarn", {"scale": factor, "train_length": train_tokens}, "default", {}),
      "e2llm": ("rope_pi", {"train_scales": [1.0, factor]}, "offset", {"max_offset": offset}),
      "anchor": ("rope", {}, "anchor", {"max_offset": offset}),
  }


def base_config(steps: int, *, train_max: int = 8, eval_max: int = 24, seed: int = 0,
                num_seeds: int = 1, task="copy", num_layers: int = 2, width: int = 64,
                num_heads: int = 4, **model) -> ExperimentConfig:
  return build.load_config({
      "task": task, "task_options": {"alphabet_size": 16},
      "model": dict(num_layers=num_layers, width=width, num_heads=num_heads, positional="rope",
                    **model),
      "train": dict(steps=steps, batch_size=64, learning_rate=1e-3, warmup_steps=min(50, steps // 4),
                    max_length=train_max, checkpoint_every=steps, log_every=max(1, steps // 4),
                    seed=seed, num_seeds=num_seeds),
      "eval": dict(max_length=eval_max, num_examples=128, batch_size=128, bucket=32)})


def train_tokens(config: ExperimentConfig) -> int:
  """Tokens of the longest training example of the config's task."""
  setup = build.setup(config)
  batch = setup.tasks[0].task.sample(np.random.default_rng(0), 1, config.train.max_length)
  return int(batch.tokens.shape[1])


def with_method(config, method, *, fine_tune_from=None, steps=200, fine_tune_max=None):
  """``config`` with the method's encoding; a fine-tune from ``fine_tune_from`` if given."""
  positional, options, positions, positions_options = method
  model = dataclasses.replace(config.model, positional=positional, positional_options=options,
                              positions=positions, positions_options=positions_options)
  t = config.train
  if fine_tune_from:
    t = dataclasses.replace(t, steps=steps, max_length=fine_tune_max, learning_rate=3e-4,
                            warmup_steps=min(20, steps // 4), init_from=fine_tune_from, checkpoint_every=steps,
                            log_every=max(1, steps // 4))
  return build.load_config(dataclasses.asdict(
      dataclasses.replace(config, model=model, train=t)))


def zero_shot(config: ExperimentConfig, params) -> list[dict]:
  """The results record of each seed's parent parameters evaluated under ``config``."""
  setup = build.setup(config)
  n = config.train.num_seeds
  records = []
  for i in range(n):
    p = jax.tree.map(lambda x: x[i], params) if n > 1 else params
    c = dataclasses.replace(config, train=dataclasses.replace(
        config.train, seed=config.train.seed + i, num_seeds=1))
    records.append(evaluate.run_record(setup, p, c))
  return records


def exact_at(records: list[dict], length: int) -> tuple[float, float]:
  """Mean and std over seeds of exact match at ``length``."""
  xs = [next(r["exact_match"] for r in rec["eval"] if r["length"] == length) for rec in records]
  return float(np.mean(xs)), float(np.std(xs))


def mean_record(records: list[dict], train_lengths) -> dict:
  """One record whose curves are the seed means, trained on ``train_lengths`` (the figure)."""
  out = dict(records[0], train_lengths=list(train_lengths))
  out["eval"] = [dict(row, exact_match=float(np.mean([rec["eval"][k]["exact_match"]
                                                      for rec in records])),
                      token_accuracy=float(np.mean([rec["eval"][k]["token_accuracy"]
                                                    for rec in records])))
                 for k, row in enumerate(records[0]["eval"])]
  return out


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="results/context_extension")
  parser.add_argument("--steps", type=int, default=800, help="parent training steps")
  parser.add_argument("--fine_tune_steps", type=int, default=200)
  parser.add_argument("--train_max", type=int, default=8, help="parent's longest copy n")
  parser.add_argument("--factor", type=float, default=2.0, help="extension factor")
  parser.add_argument("--seeds", default="0", help="comma-separated consecutive seeds")
  parser.add_argument("--heads", action="store_true", help="also the sort head comparison")
  parser.add_argument("--num_layers", type=int, default=2)
  parser.add_argument("--width", type=int, default=64)
  parser.add_argument("--num_heads", type=int, default=4,
                      help="head dim = width / num_heads: YaRN's ramp needs frequency pairs "
                           "with > 32 rotations over the training context to differ from PI")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
    raise SystemExit(f"--seeds must be consecutive (one vmapped program), got {args.seeds}")
  long = int(round(args.factor * args.train_max))
  eval_max = 2 * long
  os.makedirs(args.out, exist_ok=True)
  t0 = time.time()
  size = dict(num_layers=args.num_layers, width=args.width, num_heads=args.num_heads)
  parent = base_config(args.steps, train_max=args.train_max, eval_max=eval_max, seed=seeds[0],
                       num_seeds=len(seeds), **size)
  parent_dir = os.path.join(args.out, "parent_rope")
  parent_res = train.train_and_evaluate(parent, parent_dir, verbose=False)
  parent_minutes = (time.time() - t0) / 60
  params = workdir.restore(parent_dir)[-1]["params"]
  table = methods(args.factor, train_tokens(parent))
  rows, runs = [], {}
  cols = (args.train_max, long, eval_max)
  for name, method in table.items():
    zero = with_method(parent, method)
    zres = zero_shot(zero, params)
    os.makedirs(os.path.join(args.out, f"{name}_zeroshot"), exist_ok=True)
    with open(os.path.join(args.out, f"{name}_zeroshot", "results.json"), "w") as f:
      json.dump({"method": name, "mode": "zero-shot", "seeds": zres}, f, indent=2)
    tuned = with_method(parent, method, fine_tune_from=parent_dir, steps=args.fine_tune_steps,
                        fine_tune_max=long)
    tres = analysis.per_seed_records(train.train_and_evaluate(
        tuned, os.path.join(args.out, f"{name}_finetuned"), verbose=False))
    runs[name] = (zres, tres)
    cell = lambda recs, n: "{:.3f} ± {:.3f}".format(*exact_at(recs, n))
    rows.append(f"| {name} | " + " | ".join(cell(zres, n) for n in cols) + " | "
                + " | ".join(cell(tres, n) for n in cols) + " |")
    print(rows[-1], flush=True)
  heads = {}
  if args.heads:
    for head in ("vocab", "pointer"):
      config = base_config(args.steps, train_max=args.train_max, eval_max=eval_max,
                           task="sort", head=head, **size)
      heads[head] = train.train_and_evaluate(config, os.path.join(args.out, f"sort_{head}_head"),
                                             verbose=False)
  minutes = (time.time() - t0) / 60
  n_in, n_long, n_far = cols
  parent_cells = " | ".join(
      "{:.3f} ± {:.3f}".format(*exact_at(analysis.per_seed_records(parent_res), n)) for n in cols)
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(
        f"Copy, RoPE decoder ({args.num_layers} layers, width {args.width}, {args.num_heads} "
        f"heads) trained on n = 1-{n_in} for {args.steps} "
        f"steps (seeds {args.seeds}, vmapped: {parent_minutes:.1f} minutes); exact match, 128 "
        f"examples per length, mean ± std over the seeds. Every method is scaled for an "
        f"extension by {args.factor:g}. Zero-shot: each parent's parameters evaluated with the "
        f"method; fine-tuned: {args.fine_tune_steps} more steps at n = 1-{n_long} with the "
        f"method, each seed from its parent. 2-core CPU, jax {jax.__version__}, "
        f"{minutes:.1f} minutes in all. Regenerate: `python scripts/context_extension.py "
        f"--out {args.out} --steps {args.steps} --fine_tune_steps {args.fine_tune_steps} "
        f"--train_max {args.train_max} --factor {args.factor:g} --seeds {args.seeds} "
        f"--num_layers {args.num_layers} --width {args.width} --num_heads {args.num_heads}"
        f"{' --heads' if args.heads else ''}`.\n\n"
        f"Parent (plain RoPE): {parent_cells} at n = {n_in}, {n_long}, {n_far}.\n\n"
        f"| method | zero-shot @{n_in} | @{n_long} | @{n_far} | fine-tuned @{n_in} | "
        f"@{n_long} | @{n_far} |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    if heads:
      f.write(f"\nSort (alphabet 16), trained on n = 1-{n_in}, exact match (first seed):\n\n"
              f"| head | @{n_in} | @{n_long} | @{n_far} |\n|---|---|---|---|\n")
      for head, r in heads.items():
        em = {x["length"]: x["exact_match"] for x in r["eval"]}
        f.write(f"| {head} | {em[n_in]:.2f} | {em[n_long]:.2f} | {em[n_far]:.2f} |\n")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 3 if heads else 2, figsize=(15 if heads else 10, 3.8))
  names = list(runs)
  for ax, k, trained, title in (
      (axes[0], 0, (1, n_in), "zero-shot"),
      (axes[1], 1, (1, n_long), f"after {args.fine_tune_steps} fine-tuning steps at 1-{n_long}")):
    plotting.plot_length_generalization([mean_record(runs[n][k], trained) for n in names],
                                        labels=names, ax=ax)
    ax.set_title(f"{title} (mean of {len(seeds)} seeds)")
  if heads:
    plotting.plot_length_generalization(list(heads.values()), labels=list(heads), ax=axes[2])
    axes[2].set_title("sort: pointer vs vocabulary head")
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "figure.png"), dpi=110)


if __name__ == "__main__":
  main()

"""Context extension on an algorithmic task: a RoPE model trained short, extended by each method.

    python scripts/context_extension.py --out results/context_extension [--steps 800]

1. Trains a parent RoPE decoder on copy (lengths 1-8).
2. For each method, evaluates the parent's parameters with the method's encoding (zero-shot)
   and after a short fine-tune at lengths 1-12 (``train.init_from``).
3. Trains a pointer head and a vocabulary head on sort.
Writes one workdir per run, ``table.md`` and ``figure.png`` under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import jax

from lengthgen import build, evaluate, plotting, train, workdir
from lengthgen.config import ExperimentConfig

METHODS = {  # name -> (positional, options, positions, positions_options)
    "rope": ("rope", {}, "default", {}),
    "abf_500k": ("rope", {"base": 500000.0}, "default", {}),
    "giraffe_truncate": ("rope", {"truncate_below": 0.05, "zero_below": 0.005}, "default", {}),
    "pi_eval_x3": ("rope_pi", {"scale": 1.0, "eval_scale": 3.0}, "default", {}),
    "ntk_x3": ("rope_ntk", {"scale": 3.0}, "default", {}),
    "yarn_x3": ("rope_yarn", {"scale": 3.0, "train_length": 17}, "default", {}),
    "e2llm": ("rope_pi", {"train_scales": [1.0, 2.0, 3.0]}, "offset", {"max_offset": 32}),
    "anchor": ("rope", {}, "anchor", {"max_offset": 32}),
}


def base_config(steps: int, task="copy", **model) -> ExperimentConfig:
  return build.load_config({
      "task": task, "task_options": {"alphabet_size": 16},
      "model": dict(num_layers=2, width=64, num_heads=4, positional="rope", **model),
      "train": dict(steps=steps, batch_size=64, learning_rate=1e-3, warmup_steps=50,
                    max_length=8, checkpoint_every=steps, log_every=max(1, steps // 4)),
      "eval": dict(max_length=24, num_examples=128, batch_size=128, bucket=32)})


def with_method(config, name, *, fine_tune_from=None, steps=200):
  positional, options, positions, positions_options = METHODS[name]
  model = dataclasses.replace(config.model, positional=positional, positional_options=options,
                              positions=positions, positions_options=positions_options)
  t = config.train
  if fine_tune_from:
    t = dataclasses.replace(t, steps=steps, max_length=12, learning_rate=3e-4,
                            warmup_steps=20, init_from=fine_tune_from, checkpoint_every=steps)
  return build.load_config(dataclasses.asdict(
      dataclasses.replace(config, model=model, train=t)))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="results/context_extension")
  parser.add_argument("--steps", type=int, default=800)
  parser.add_argument("--fine_tune_steps", type=int, default=200)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  t0 = time.time()
  parent = base_config(args.steps)
  parent_dir = os.path.join(args.out, "parent_rope")
  train.train_and_evaluate(parent, parent_dir, verbose=False)
  params = workdir.restore(parent_dir)[-1]["params"]
  rows, runs = [], {}
  for name in METHODS:
    zero = with_method(parent, name)
    zero_rows = evaluate.evaluate(build.setup(zero), params)
    zres = evaluate.results_record(zero_rows, zero, extra={"method": name, "mode": "zero-shot"})
    tuned_dir = os.path.join(args.out, f"{name}_finetuned")
    tuned = with_method(parent, name, fine_tune_from=parent_dir, steps=args.fine_tune_steps)
    tres = train.train_and_evaluate(tuned, tuned_dir, verbose=False)
    os.makedirs(os.path.join(args.out, f"{name}_zeroshot"), exist_ok=True)
    with open(os.path.join(args.out, f"{name}_zeroshot", "results.json"), "w") as f:
      json.dump(zres, f, indent=2)
    runs[name] = (zres, tres)
    em = lambda r, n: next(x["exact_match"] for x in r["eval"] if x["length"] == n)
    rows.append(f"| {name} | {em(zres, 8):.2f} | {em(zres, 12):.2f} | {em(zres, 16):.2f} | "
                f"{em(tres, 12):.2f} | {em(tres, 16):.2f} | {em(tres, 24):.2f} |")
    print(rows[-1], flush=True)
  heads = {}
  for head in ("vocab", "pointer"):
    config = base_config(args.steps, task="sort", head=head)
    heads[head] = train.train_and_evaluate(config, os.path.join(args.out, f"sort_{head}_head"),
                                           verbose=False)
  minutes = (time.time() - t0) / 60
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(f"Copy, RoPE decoder (2 layers, width 64) trained on lengths 1-8 for {args.steps} "
            f"steps; exact match (128 examples per length). Zero-shot: the parent's parameters "
            f"evaluated with the method; fine-tuned: {args.fine_tune_steps} more steps at lengths "
            f"1-12 with the method. Single seed, 2-core CPU, jax {jax.__version__}, "
            f"{minutes:.1f} minutes in all.\n\n"
            "| method | zero-shot @8 | @12 | @16 | fine-tuned @12 | @16 | @24 |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n")
    f.write("Sort (alphabet 16), trained on lengths 1-8, exact match:\n\n"
            "| head | @8 | @12 | @16 | @24 |\n|---|---|---|---|---|\n")
    for head, r in heads.items():
      em = {x["length"]: x["exact_match"] for x in r["eval"]}
      f.write(f"| {head} | {em[8]:.2f} | {em[12]:.2f} | {em[16]:.2f} | {em[24]:.2f} |\n")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
  names = list(runs)
  plotting.plot_length_generalization([runs[n][0] for n in names], labels=names, ax=axes[0])
  axes[0].set_title("zero-shot")
  plotting.plot_length_generalization([runs[n][1] for n in names], labels=names, ax=axes[1])
  axes[1].set_title(f"after {args.fine_tune_steps} fine-tuning steps at 1-12")
  plotting.plot_length_generalization(list(heads.values()), labels=list(heads), ax=axes[2])
  axes[2].set_title("sort: pointer vs vocabulary head")
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "figure.png"), dpi=110)


if __name__ == "__main__":
  main()

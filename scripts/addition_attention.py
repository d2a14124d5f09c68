"""Which operand digit each answer step of a trained addition run attends to, per head.

  .venv/bin/python scripts/addition_attention.py WORKDIR [--lengths=5,8,10] [--examples=32]
      [--seeds=0,1,2]

Evaluation examples of equal-length reversed operands (``operands`` natural or padded: the
run's evaluation task), a ``+`` b ``=`` answer. The step that predicts answer digit d (the
``=`` token for d = 1, answer digit d - 1 after it) needs digit d of both operands. For each
layer and head the script prints how often the most-attended digit of operand a and of
operand b is digit d, the head that most often attends to digit d - 1 of each operand (the
carry's input) with that fraction, and, for the head that finds digit d most often, the
digit it attends to at each d (``d1->8`` means the step predicting digit 1 attends most to digit 8).
"""

from __future__ import annotations

import argparse

import numpy as np

from lengthgen import analysis


def digit_argmax(weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
  """[L, H, B, n] 1-based index of the most-attended digit of operand a and of operand b, for
  the step predicting each answer digit, from ``weights`` [L, B, H, T, T]."""
  queries = 2 * n + np.arange(1, n + 1)  # '=' sits at 2n + 1, answer digit d - 1 at 2n + d
  w = np.transpose(weights[:, :, :, queries, :], (0, 2, 1, 3, 4))  # L, H, B, d, keys
  return w[..., :n].argmax(-1) + 1, w[..., n + 1:2 * n + 1].argmax(-1) + 1


def report(run: analysis.TrainedRun, lengths: list[int], examples: int) -> list[str]:
  task = run.setup.tasks[0].eval_task
  if run.config.task != "addition" or not task.reversed or task.index_hints or task.scratchpad:
    raise SystemExit("addition_attention: needs a reversed addition run without index hints "
                     f"or scratchpad; {run.workdir} trains {run.config.task} "
                     f"{run.config.task_options}")
  if task.operands == "bucket":
    raise SystemExit("addition_attention: the run evaluates bucket operands of unequal "
                     "lengths; set config.eval.task_options operands to natural or padded")
  lines = []
  for n in lengths:
    a, b = digit_argmax(run.attention_maps(n, num_examples=examples)["weights"], n)
    want = np.arange(1, n + 1)
    hit_a, hit_b = (a == want).mean(axis=(2, 3)), (b == want).mean(axis=(2, 3))
    lines.append(f"length {n}: fraction of answer steps whose most-attended digit is digit d")
    for layer in range(a.shape[0]):
      lines.append("  layer %d: " % layer + "  ".join(
          f"head {h} a {hit_a[layer, h]:.2f} b {hit_b[layer, h]:.2f}"
          for h in range(a.shape[1])))
    # The carry into digit d comes from digit d - 1 (steps d >= 2).
    carry_a = (a[..., 1:] == want[:-1]).mean(axis=(2, 3))
    carry_b = (b[..., 1:] == want[:-1]).mean(axis=(2, 3))
    for name, hits in (("a", carry_a), ("b", carry_b)):
      layer, head = np.unravel_index(np.argmax(hits), hits.shape)
      lines.append(f"  digit d - 1 of operand {name}: best layer {layer} head {head} "
                   f"{hits[layer, head]:.2f}")
    layer, head = np.unravel_index(np.argmax(hit_a + hit_b), hit_a.shape)
    steps = []
    for d in range(n):
      values, counts = np.unique(a[layer, head, :, d], return_counts=True)
      steps.append(f"d{d + 1}->{values[np.argmax(counts)]}")
    lines.append(f"  layer {layer} head {head}, operand a (most common per d): " + " ".join(steps))
  return lines


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdir")
  p.add_argument("--lengths", default="5,8,10")
  p.add_argument("--examples", type=int, default=32)
  p.add_argument("--seeds", default="0", help="seed indices of a vmapped workdir")
  args = p.parse_args()
  lengths = [int(x) for x in args.lengths.split(",")]
  for s in [int(x) for x in args.seeds.split(",")]:
    run = analysis.TrainedRun(args.workdir, seed_index=s)
    print(f"# {args.workdir} seed {run.seed} (step {run.step})")
    print("\n".join(report(run, lengths, args.examples)))


if __name__ == "__main__":
  main()

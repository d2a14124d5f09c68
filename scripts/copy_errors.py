"""Where a trained decoder (copy, count, ...) goes wrong beyond its training lengths; a T5 check.

  .venv/bin/python scripts/copy_errors.py WORKDIR [--lengths=22,26,30,40] [--clamp_t5]

For each length: how many of the evaluation examples (the run's own evaluation examples,
teacher-forced as ``lengthgen.evaluate``) have an error, the answer index of each example's
first error, and the most common (target, prediction) pairs there; e.g. ``('a6', '<eos>')``
means the model stopped early. With ``--clamp_t5`` (runs with the T5 bias) it also
re-evaluates exact match beyond the training lengths after setting every bucket of the bias
table that the training lengths never reach to the farthest trained bucket's value: if the
score does not change, the untrained far buckets are not what fails.

With ``--sort_kinds`` (sort runs) each wrong example's first error is also classified:
``one copy too many`` (it repeats the previous value once more than the source has it),
``one copy too few`` (it moves on while a copy is left), ``skipped a value``, ``early eos``,
``first (min)`` or ``other``.

With ``--by_multiplicity`` (sort runs) exact match at each length is split by the source's
multiplicity, the largest number of times any one value occurs in it, over the evaluation
examples of ``--multiplicity_draws`` evaluation seeds (the run's own, then the next ones), beside
how often each multiplicity occurs in training data (training lengths drawn uniformly, as
``lengthgen.data`` does): exact match that falls with the multiplicity at one length, with
multiplicities above the training ones failing, says the count of repeated values is what does
not extrapolate.

Runs on every seed of a vmapped workdir (``--seeds`` picks the seed indices).
"""

from __future__ import annotations

import argparse
import collections

import jax
import jax.numpy as jnp
import numpy as np

from lengthgen import analysis, evaluate
from lengthgen.attention.bias import t5_relative_position_bucket


def first_error_rows(run: analysis.TrainedRun, length: int) -> list[tuple]:
  """One (answer index, target, prediction, previous target or None) tuple per evaluation example
  of ``length`` with an error, at its first error (inputs: ``evaluate.length_inputs``)."""
  inputs = evaluate.length_inputs(run.setup, length)
  logits = run.setup.model.apply({"params": run.params}, inputs["tokens"], inputs["positions"],
                                 lengths=inputs["lengths"], task_ids_B=inputs["task_ids"],
                                 rngs=evaluate.eval_rngs(inputs))
  pred = np.asarray(jnp.argmax(logits, -1))
  target, mask = inputs["targets"], inputs["loss_mask"] > 0
  rows = []
  for b in range(len(pred)):
    idx = np.flatnonzero(mask[b])
    wrong = np.flatnonzero(pred[b, idx] != target[b, idx])
    if len(wrong):
      k = int(wrong[0])
      previous = int(target[b, idx[k - 1]]) if k else None
      rows.append((k, int(target[b, idx[k]]), int(pred[b, idx[k]]), previous))
  return rows


def first_errors(rows, vocab: list[str]) -> tuple[int, dict, list]:
  """(examples with an error, {answer index of the first error: count}, top 3 (target,
  prediction) pairs) of ``first_error_rows``."""
  where = collections.Counter(k for k, _, _, _ in rows)
  pairs = collections.Counter((vocab[t], vocab[p]) for _, t, p, _ in rows)
  return len(rows), dict(sorted(where.items())), pairs.most_common(3)


def sort_error_kind(target: int, prediction: int, previous: int | None, eos: int) -> str:
  """The kind of a sort model's first error (see the module docstring)."""
  if previous is None:
    return "first (min)"
  if prediction == previous:
    return "one copy too many"
  if target == previous:
    return "one copy too few"
  if prediction == eos:
    return "early eos"
  if prediction > target:
    return "skipped a value"
  return "other"


def sort_kinds(rows, eos: int) -> dict:
  """{kind: count} of the first errors ``first_error_rows`` of a sort run."""
  kinds = collections.Counter(sort_error_kind(t, p, previous, eos) for _, t, p, previous in rows)
  return dict(kinds.most_common())


def max_multiplicity(answers: np.ndarray, mask: np.ndarray, eos: int) -> np.ndarray:
  """[B]: the largest number of times one token occurs among the supervised, non-eos tokens of
  each row of ``answers`` [B, T] (``mask`` [B, T] marks the supervised ones)."""
  out = np.zeros(len(answers), np.int64)
  for b in range(len(answers)):
    tokens = answers[b][mask[b] & (answers[b] != eos)]
    out[b] = np.bincount(tokens).max() if len(tokens) else 0
  return out


def exact_by_multiplicity(run: analysis.TrainedRun, length: int, draws: int) -> dict:
  """{multiplicity: (examples, exactly right)} over the evaluation examples of ``length`` from
  ``draws`` evaluation seeds (``run.config.train.seed`` and the next ones), teacher-forced as
  ``lengthgen.evaluate``."""
  eos = run.setup.tasks[0].task.eos_id
  counts: dict[int, list[int]] = collections.defaultdict(lambda: [0, 0])
  for d in range(draws):
    inputs = evaluate.length_inputs(run.setup, length, seed=run.config.train.seed + d)
    logits = run.setup.model.apply({"params": run.params}, inputs["tokens"], inputs["positions"],
                                   lengths=inputs["lengths"], task_ids_B=inputs["task_ids"],
                                   rngs=evaluate.eval_rngs(inputs))
    pred = np.asarray(jnp.argmax(logits, -1))
    mask = inputs["loss_mask"] > 0
    exact = np.all((pred == inputs["targets"]) | ~mask, axis=1)
    for m, ok in zip(max_multiplicity(inputs["targets"], mask, eos), exact):
      counts[int(m)][0] += 1
      counts[int(m)][1] += int(ok)
  return {m: tuple(counts[m]) for m in sorted(counts)}


def training_multiplicities(run: analysis.TrainedRun, num_examples: int = 4096) -> dict:
  """{multiplicity: fraction} of ``num_examples`` training examples of the main task, each of a
  length drawn uniformly from the training range."""
  c, task = run.config, run.setup.tasks[0].task
  rng = np.random.default_rng(0)
  found = collections.Counter()
  for length in rng.integers(c.train.min_length, c.train.max_length + 1, size=num_examples):
    batch = task.sample(rng, 1, int(length))
    mask = batch.loss_mask > 0
    found[int(max_multiplicity(batch.targets, mask, task.eos_id)[0])] += 1
  return {m: found[m] / num_examples for m in sorted(found)}


def clamp_t5_table(params, last_bucket: int):
  """``params`` with every T5 bias table's buckets after ``last_bucket`` set to its value."""
  def clamp(path, x):
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    if "position_bias" in name and name.endswith("table"):
      x = np.array(x)
      x[:, last_bucket + 1:] = x[:, last_bucket:last_bucket + 1]
      return jnp.asarray(x)
    return x
  return jax.tree_util.tree_map_with_path(clamp, params)


def ood_exact_match(run: analysis.TrainedRun, params) -> float:
  rows = evaluate.evaluate(run.setup, params)
  return float(np.mean([r["exact_match"] for r in rows
                        if r["length"] > run.config.train.max_length]))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("workdir")
  p.add_argument("--lengths", default="22,26,30,40")
  p.add_argument("--seeds", default="", help="seed indices (default: all of the workdir)")
  p.add_argument("--clamp_t5", action="store_true")
  p.add_argument("--sort_kinds", action="store_true")
  p.add_argument("--by_multiplicity", action="store_true")
  p.add_argument("--multiplicity_draws", type=int, default=4)
  a = p.parse_args()
  first = analysis.TrainedRun(a.workdir)
  seeds = ([int(s) for s in a.seeds.split(",")] if a.seeds
           else list(range(first.config.train.num_seeds)))
  for seed_index in seeds:
    run = analysis.TrainedRun(a.workdir, seed_index=seed_index)
    print(f"seed index {seed_index} (train.seed {run.config.train.seed} + {seed_index}):")
    for length in (int(n) for n in a.lengths.split(",")):
      rows = first_error_rows(run, length)
      n, where, pairs = first_errors(rows, run.setup.tasks[0].task.vocab)
      print(f"  length {length}: {n}/{run.config.eval.num_examples} with an error; first error "
            f"at answer index {where}; (target, prediction) {pairs}")
      if a.sort_kinds:
        print(f"    first-error kinds: {sort_kinds(rows, run.setup.tasks[0].task.eos_id)}")
      if a.by_multiplicity:
        split = exact_by_multiplicity(run, length, a.multiplicity_draws)
        print("    exact match by multiplicity: " + ", ".join(
            f"{m}: {right / n:.3f} ({n})" for m, (n, right) in split.items()))
    if a.by_multiplicity:
      print("  training multiplicities: " + ", ".join(
          f"{m}: {f:.3f}" for m, f in training_multiplicities(run).items()))
    if a.clamp_t5:
      task = run.setup.tasks[0].task
      longest = task.sample(np.random.default_rng(0), 1, run.config.train.max_length)
      encoding = run.model.encoding
      if encoding.name != "t5":
        raise SystemExit(f"--clamp_t5: {a.workdir} uses {encoding.name!r}, not the T5 bias")
      last = int(t5_relative_position_bucket(
          -np.asarray(longest.tokens.shape[1] - 1), bidirectional=not run.config.model.causal,
          num_buckets=encoding.num_buckets, max_distance=encoding.max_distance))
      print(f"  exact match beyond training: {ood_exact_match(run, run.params):.3f} as "
            f"trained, {ood_exact_match(run, clamp_t5_table(run.params, last)):.3f} with the "
            f"buckets after {last} (the farthest a training sequence reaches) clamped")


if __name__ == "__main__":
  main()

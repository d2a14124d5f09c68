"""Length-generalization evaluation: per-length exact match and token accuracy.

Every length in the evaluation range gets its own fixed set of examples (a function of
(seed, length)); sequences are padded to multiples of ``config.eval.bucket`` and batches to
``config.eval.batch_size``, so the evaluation compiles once per bucket, not once per length.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lengthgen import data, metrics
from lengthgen.config import NORMALIZER_MODIFIERS, ExperimentConfig
from lengthgen.tasks import pad_batch


def eval_rngs(inputs) -> dict:
  """The rngs of an evaluation forward pass over a batch of ``length_inputs``: a ``"dropout"``
  key from the batch's first ``eval_seed`` (a function of the evaluation seed and length), for
  encodings that draw at evaluation too (``relative`` with ``random_distances``); dropout
  itself is off outside training."""
  return {"dropout": jax.random.key(inputs["eval_seed"][0])}


@functools.partial(jax.jit, static_argnames=("model",))
def eval_step(params, inputs, *, model):
  logits = model.apply({"params": params}, inputs["tokens"], inputs["positions"],
                       lengths=inputs["lengths"], task_ids_B=inputs["task_ids"], train=False,
                       rngs=eval_rngs(inputs))
  out = metrics.masked_accuracies(logits, inputs["targets"], inputs["loss_mask"])
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs["targets"])
  out["nll"] = jnp.sum(ce * inputs["loss_mask"], axis=1)  # summed over supervised tokens
  return out


def eval_batch_size(config: ExperimentConfig, padded_length: int) -> int:
  """Examples per evaluation batch: ``eval.batch_size``, halved until the batch holds at most
  ``eval.max_batch_tokens`` tokens (powers of two of the batch size keep compiles few)."""
  e = config.eval
  size = e.batch_size
  while size > 1 and size * padded_length > e.max_batch_tokens:
    size = -(-size // 2)
  return size


def length_inputs(setup, length: int, *, task_index: int = 0,
                  seed: int | None = None) -> dict[str, np.ndarray]:
  """The model inputs of the ``config.eval.num_examples`` evaluation examples of one length of
  task ``task_index`` (a function of (seed, length); default seed: the config's), with
  ``eval_seed`` [B] for ``eval_rngs``."""
  config = setup.config
  e = config.eval
  rng = data.eval_rng(config.train.seed if seed is None else seed, length)
  batch = setup.tasks[task_index].eval_task.sample(rng, e.num_examples, length)
  batch = pad_batch(batch, data.round_up(batch.tokens.shape[1], e.bucket))
  inputs = data.mixture_inputs(setup, [(task_index, batch)], rng, train=False)
  inputs["eval_seed"] = rng.integers(0, 2**31 - 1, size=e.num_examples).astype(np.uint32)
  return inputs


def evaluate_length(setup, params, length: int, *, task_index: int = 0,
                    seed: int | None = None) -> dict:
  """Exact match, token accuracy and loss of ``config.eval.num_examples`` examples of one length of
  task ``task_index`` of a ``lengthgen.build.Setup`` (examples: ``length_inputs``)."""
  config = setup.config
  inputs = length_inputs(setup, length, task_index=task_index, seed=seed)
  size = eval_batch_size(config, inputs["tokens"].shape[1])
  model = setup.model
  return length_row(lambda chunk: eval_step(params, chunk, model=model), inputs, length, size)


def length_row(run, inputs: dict[str, np.ndarray], length: int, size: int) -> dict:
  """Runs ``run(chunk) -> masked_accuracies`` over batches of ``size`` examples (the last one
  zero-padded) and returns the per-length row: exact match, token accuracy and, where ``run``
  also returns ``nll`` (per-example summed cross-entropy), ``loss``: the mean cross-entropy
  per supervised token."""
  n = len(next(iter(inputs.values())))
  padded_n = data.round_up(n, size)
  inputs = {k: np.concatenate([v, np.zeros((padded_n - n,) + v.shape[1:], v.dtype)])
            for k, v in inputs.items()}
  correct = total = exact = 0
  nll = None
  for i in range(0, padded_n, size):
    out = jax.device_get(run({k: v[i:i + size] for k, v in inputs.items()}))
    valid = slice(0, max(0, min(size, n - i)))
    correct += int(out["correct"][valid].sum())
    total += int(out["total"][valid].sum())
    exact += int(out["exact"][valid].sum())
    if "nll" in out:
      nll = (nll or 0.0) + float(np.sum(out["nll"][valid], dtype=np.float64))
  row = {"length": int(length), "exact_match": exact / n,
         "token_accuracy": correct / max(total, 1), "num_examples": n}
  if nll is not None:
    row["loss"] = nll / max(total, 1)
  return row


def eval_lengths(config: ExperimentConfig) -> range:
  """The evaluated lengths: every ``eval.stride``-th of [eval.min_length, eval.max_length]."""
  e = config.eval
  return range(e.min_length, e.max_length + 1, e.stride)


def evaluate(setup, params, *, task_index: int = 0, seed: int | None = None) -> list[dict]:
  """One row per evaluated length (``eval_lengths``) of one task of the mixture; a long
  evaluation (20 lengths or more) shows its progress."""
  lengths = eval_lengths(setup.config)
  what = f"evaluating {setup.names[task_index]}" + ("" if seed is None else f" (seed {seed})")
  return [evaluate_length(setup, params, length, task_index=task_index, seed=seed)
          for length in metrics.progress(lengths, len(lengths), what)]


def run_record(setup, params, config: ExperimentConfig) -> dict:
  """The ``results.json`` record of one seed (``config`` holds its seed): the main task's
  per-length rows and score, plus ``tasks`` (each hint task's rows and score) in a mixture."""
  seed = config.train.seed
  rows = evaluate(setup, params, seed=seed)
  extra = None
  if len(setup.tasks) > 1:
    extra = {"hints": list(setup.names[1:]), "multitask_head": config.multitask_head,
             "tasks": {}}
    for k, m in enumerate(setup.tasks[1:], start=1):
      hint_rows = evaluate(setup, params, task_index=k, seed=seed)
      extra["tasks"][m.name] = {"eval": hint_rows, "score": summarize(hint_rows, config),
                                "weight": m.weight, "fraction": m.fraction}
  return results_record(rows, config, extra=extra)


def summarize(rows: list[dict], config: ExperimentConfig) -> dict:
  """Mean of the score metric in and beyond the training range (None where no length falls)."""
  key = config.eval.score_metric
  lo, hi = config.train.min_length, config.train.max_length
  inside = [r[key] for r in rows if lo <= r["length"] <= hi]
  beyond = [r[key] for r in rows if r["length"] > hi]
  mean = lambda xs: float(np.mean(xs)) if xs else None
  return {"metric": key, "in_distribution": mean(inside), "out_of_distribution": mean(beyond)}


def score_over_seeds(scores: list[dict]) -> dict:
  """Mean and standard deviation over seeds of each score entry."""
  out = {"metric": scores[0]["metric"]}
  for key in ("in_distribution", "out_of_distribution"):
    values = [s[key] for s in scores if s[key] is not None]
    out[key] = ({"mean": float(np.mean(values)), "std": float(np.std(values)),
                 "values": values} if values else None)
  return out


def normalizer_label(config: ExperimentConfig) -> str:
  """The normalizer with its modifiers, as results.json and the sweeps name it:
  ``softmax``, ``ssmax+qk_norm``, ``softmax+length_temperature``."""
  m = config.model
  return "+".join([m.normalizer] + [name for name in NORMALIZER_MODIFIERS if getattr(m, name)])


def results_record(rows: list[dict], config: ExperimentConfig, *, extra: dict | None = None):
  """The ``results.json`` object of one seed (schema: docs/workdir.md)."""
  record = {
      "task": config.task,
      "positional": config.model.positional,
      "positions": config.model.positions,
      "normalizer": normalizer_label(config),
      "model": config.model.kind,
      "train_lengths": [config.train.min_length, config.train.max_length],
      "steps": config.train.steps,
      "seed": config.train.seed,
      "eval": rows,
      "score": summarize(rows, config),
  }
  record.update(extra or {})
  return record


def format_table(rows: list[dict], config: ExperimentConfig) -> str:
  """A plain-text table of the per-length results, training range marked with '*'."""
  lines = ["length  exact_match  token_accuracy"]
  for r in rows:
    mark = "*" if config.train.min_length <= r["length"] <= config.train.max_length else " "
    lines.append(f"{r['length']:>5}{mark}  {r['exact_match']:>11.3f}  {r['token_accuracy']:>14.3f}")
  s = summarize(rows, config)
  fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
  lines.append(f"({'*'} = training length)  {s['metric']}: in-distribution "
               f"{fmt(s['in_distribution'])}, beyond training {fmt(s['out_of_distribution'])}")
  return "\n".join(lines)

"""Task hinting: a main task trained together with hint tasks on one shared trunk.

Declared in the config (``lengthgen.train`` hands such configs here)::

    config.task = "sort"
    config.hints = [{"name": "successor", "options": {"alphabet_size": 64},
                     "weight": 1.0, "fraction": 0.5}]
    config.multitask_head = "per_task"      # or "indicator"

* Vocabulary: the union of every task's symbols by name, the main task's first (its ids are
  unchanged); each task's token ids are remapped into it.
* ``per_task`` heads: one linear readout per task, the example's task id selects it (the trunk
  is built with ``num_tasks * V`` outputs and they are read as ``[num_tasks, V]``; its input
  embedding therefore has ``num_tasks * V`` rows of which the first ``V`` are used).
  ``indicator``: a task token ``<task:NAME>`` is prepended to every sequence and one head is
  shared.
* Batches: ``fraction`` of each batch is drawn from each hint task, the rest from the main
  task, lengths uniform in the training range; a function of (seed, step) as in ``data``.
* Loss: ``sum_k weight_k * L_k``, ``L_k`` the masked mean cross-entropy of task k's answer
  tokens in the batch (main task weight 1). A task of weight 0 gets no gradient.
* Metrics: ``loss``, ``exact_match``, ``token_accuracy`` (main task, so logs read as before)
  and ``loss_NAME``, ``exact_match_NAME``, ``token_accuracy_NAME`` for every task.
* results.json: the DESIGN.md record of the main task plus ``tasks``: each hint task's
  per-length rows and score.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lengthgen import data, evaluate, metrics
from lengthgen.config import ConfigError, ExperimentConfig, ModelConfig
from lengthgen.model import Transformer
from lengthgen.tasks import Batch, Task, concat_batches, pad_batch

HEAD_MODES = ("per_task", "indicator")
HINT_FIELDS = ("name", "options", "weight", "fraction")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One task of a multitask run: ``weight`` of its loss, ``fraction`` of each batch."""

  name: str
  task: Task
  weight: float
  fraction: float


def hint_task(name: str, **options) -> Task:
  """A hint task (``tasks.hints.HINT_TASKS``) or any registered task, by name."""
  import lengthgen.tasks as tasks
  from lengthgen.tasks.hints import HINT_TASKS
  known = {**tasks.TASKS, **HINT_TASKS}
  if name not in known:
    raise ValueError(f"unknown hint task {name!r}; valid hint tasks: {', '.join(sorted(known))}")
  try:
    return known[name](**options)
  except TypeError as e:
    raise ValueError(f"hint task {name!r}: bad options {options}: {e}") from None


def validate(config: ExperimentConfig) -> None:
  """Checks ``config.hints`` and ``config.multitask_head``; raises ``ConfigError``."""
  if config.multitask_head not in HEAD_MODES:
    raise ConfigError(f"config.multitask_head: unknown value {config.multitask_head!r}; "
                      f"valid values: {', '.join(HEAD_MODES)}")
  if not isinstance(config.hints, list):
    raise ConfigError(f"config.hints must be a list of {{{', '.join(HINT_FIELDS)}}} mappings, "
                      f"got {type(config.hints).__name__}")
  names, total = [config.task], 0.0
  for i, h in enumerate(config.hints):
    path = f"config.hints[{i}]"
    if not isinstance(h, Mapping):
      raise ConfigError(f"{path} must be a mapping with fields {', '.join(HINT_FIELDS)}, "
                        f"got {h!r}")
    unknown = sorted(set(h) - set(HINT_FIELDS))
    if unknown or "name" not in h:
      raise ConfigError(f"{path}: unknown field(s) {unknown} or missing 'name'; valid fields: "
                        f"{', '.join(HINT_FIELDS)}")
    try:
      task = hint_task(h["name"], **dict(h.get("options", {})))
    except (ValueError, TypeError) as e:
      raise ConfigError(f"{path}.name/options: {e}") from None
    if task.kind != "decoder" or config.model.kind != "decoder":
      raise ConfigError(f"{path}: task hinting needs decoder tasks and config.model.kind="
                        f"'decoder'; got a {task.kind} hint and a {config.model.kind} model")
    if h["name"] in names:
      raise ConfigError(f"{path}.name: task {h['name']!r} appears twice (the main task is "
                        f"{config.task!r}); each task may appear once")
    names.append(h["name"])
    weight, fraction = h.get("weight", 1.0), h.get("fraction", 0.5)
    for field, value in (("weight", weight), ("fraction", fraction)):
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}.{field} must be a number, got {value!r}")
    if weight < 0:
      raise ConfigError(f"{path}.weight must be >= 0, got {weight}")
    if not 0 < fraction < 1 or round(fraction * config.train.batch_size) < 1:
      raise ConfigError(f"{path}.fraction must be in (0, 1) and give at least one example of "
                        f"config.train.batch_size={config.train.batch_size}; got {fraction}")
    total += fraction
  if config.hints:
    if total >= 1:
      raise ConfigError(f"config.hints: the fractions sum to {total}; they must leave part "
                        "of each batch (1 - sum) to the main task")
    if config.multitask_head == "per_task" and config.model.head != "vocab":
      raise ConfigError(f"config.model.head: per_task multitask heads need the 'vocab' head, "
                        f"got {config.model.head!r}; use config.multitask_head='indicator'")
    if config.train.num_seeds != 1 or config.train.init_from:
      raise ConfigError("config.hints: multitask runs train one seed from scratch; set "
                        "config.train.num_seeds=1 and config.train.init_from=None")


def specs(config: ExperimentConfig) -> list[TaskSpec]:
  """The main task (weight 1, the rest of each batch) then the hints, in config order."""
  import lengthgen.tasks as tasks
  hints = [TaskSpec(h["name"], hint_task(h["name"], **dict(h.get("options", {}))),
                    float(h.get("weight", 1.0)), float(h.get("fraction", 0.5)))
           for h in config.hints]
  main = TaskSpec(config.task, tasks.get(config.task, **config.task_options), 1.0,
                  1.0 - sum(h.fraction for h in hints))
  return [main] + hints


def union_vocab(task_specs: list[TaskSpec], head: str) -> list[str]:
  """Every task's symbols by name, in first-seen order (main task first); task tokens last."""
  vocab = []
  for s in task_specs:
    vocab += [v for v in s.task.vocab if v not in vocab]
  if head == "indicator":
    vocab += [f"<task:{s.name}>" for s in task_specs]
  return vocab


def remap_table(task: Task, vocab: list[str]) -> np.ndarray:
  """``table[task id] = union id``."""
  index = {v: i for i, v in enumerate(vocab)}
  return np.asarray([index[v] for v in task.vocab], np.int32)


def batch_counts(task_specs: list[TaskSpec], batch_size: int) -> list[int]:
  hints = [int(round(s.fraction * batch_size)) for s in task_specs[1:]]
  return [batch_size - sum(hints)] + hints


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything derived from a config: tasks, union vocabulary, remap tables, the model."""

  config: ExperimentConfig
  specs: list
  vocab: list
  tables: list
  model: Any

  @property
  def names(self) -> list[str]:
    return [s.name for s in self.specs]


def setup(config: ExperimentConfig) -> Setup:
  task_specs = specs(config)
  vocab = union_vocab(task_specs, config.multitask_head)
  model = MultitaskTransformer(config.model, len(vocab), len(task_specs),
                               config.multitask_head == "per_task")
  return Setup(config, task_specs, vocab, [remap_table(s.task, vocab) for s in task_specs],
               model)


def to_union(batch: Batch, s: Setup, k: int) -> Batch:
  """Remaps task ``k``'s batch into the union vocabulary (indicator mode: task token first)."""
  table = s.tables[k]
  tokens, targets = table[batch.tokens], table[batch.targets]
  mask = batch.loss_mask
  if s.config.multitask_head == "indicator":
    b = tokens.shape[0]
    ind = np.full((b, 1), s.vocab.index(f"<task:{s.names[k]}>"), np.int32)
    targets = np.concatenate([tokens[:, :1], targets], axis=1)
    tokens = np.concatenate([ind, tokens], axis=1)
    mask = np.concatenate([np.zeros((b, 1), bool), mask], axis=1)
  return Batch(tokens.astype(np.int32), targets.astype(np.int32), mask)


class _Vocab:
  def __init__(self, vocab):
    self.vocab = vocab


def _inputs(batch: Batch, task_ids: np.ndarray, s: Setup, rng, *, train: bool) -> dict:
  inputs = data.model_inputs(batch, s.config, _Vocab(s.vocab), rng, train=train)
  inputs["task_ids"] = np.asarray(task_ids, np.int32)
  return inputs


def training_inputs(s: Setup, step: int) -> dict[str, np.ndarray]:
  """The mixed batch of ``step`` (a function of (seed, step)), with ``task_ids`` [B]."""
  t = s.config.train
  rng = data.train_rng(t.seed, step)
  parts, ids = [], []
  for k, (spec, count) in enumerate(zip(s.specs, batch_counts(s.specs, t.batch_size))):
    b = data.mixed_length_batch(spec.task, rng, count, t.min_length, t.max_length)
    parts.append(to_union(b, s, k))
    ids.append(np.full(count, k, np.int32))
  batch = concat_batches(parts)
  return _inputs(batch, np.concatenate(ids), s, rng, train=True)


def select_head(logits_BTKV: jax.Array, task_ids_B: jax.Array) -> jax.Array:
  """``out[b, t] = logits[b, t, task_ids[b]]``: [B, T, V]."""
  idx = jnp.asarray(task_ids_B, jnp.int32)[:, None, None, None]
  return jnp.take_along_axis(logits_BTKV, idx, axis=2)[:, :, 0]


class MultitaskTransformer(nn.Module):
  """The shared trunk with one readout per task (``per_task_heads``) or one in total."""

  config: ModelConfig
  vocab_size: int
  num_tasks: int
  per_task_heads: bool = True

  @nn.compact
  def __call__(self, tokens_BT, positions_BT=None, *, task_ids_B, lengths=None,
               train: bool = False):
    k = self.num_tasks if self.per_task_heads else 1
    logits = Transformer(self.config, self.vocab_size * k, name="trunk")(
        tokens_BT, positions_BT, lengths=lengths, train=train)
    if k == 1:
      return logits
    b, t, _ = logits.shape
    return select_head(logits.reshape(b, t, k, self.vocab_size), task_ids_B)


def loss_and_metrics(params, inputs, key, *, model, names, weights, train: bool):
  logits = model.apply({"params": params}, inputs["tokens"], inputs["positions"],
                       task_ids_B=inputs["task_ids"], lengths=inputs["lengths"], train=train,
                       rngs={"dropout": key})
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs["targets"])
  acc = metrics.masked_accuracies(logits, inputs["targets"], inputs["loss_mask"])
  loss, out = 0.0, {}
  for k, name in enumerate(names):
    sel = inputs["task_ids"] == k
    mask = inputs["loss_mask"] & sel[:, None]
    task_loss = jnp.sum(ce * mask) / jnp.maximum(mask.sum(), 1)
    loss = loss + weights[k] * task_loss
    has_answer = sel & (acc["total"] > 0)
    out[f"loss_{name}"] = task_loss
    out[f"token_accuracy_{name}"] = (jnp.sum(acc["correct"] * sel)
                                     / jnp.maximum(jnp.sum(acc["total"] * sel), 1))
    out[f"exact_match_{name}"] = (jnp.sum(acc["exact"] & has_answer)
                                  / jnp.maximum(has_answer.sum(), 1))
  out["loss"] = loss
  out["exact_match"] = out[f"exact_match_{names[0]}"]
  out["token_accuracy"] = out[f"token_accuracy_{names[0]}"]
  return loss, out


def train_step(state, inputs, key, *, model, tx, names, weights):
  """One optimizer step on a mixed batch; pure. The dropout key is fold_in(key, step)."""
  step_key = jax.random.fold_in(key, state["step"])
  fn = functools.partial(loss_and_metrics, model=model, names=names, weights=weights,
                         train=True)
  (_, step_metrics), grads = jax.value_and_grad(fn, has_aux=True)(state["params"], inputs,
                                                                   step_key)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  step_metrics["grad_norm"] = optax.tree.norm(grads)
  return {"step": state["step"] + 1, "params": optax.apply_updates(state["params"], updates),
          "opt_state": opt_state}, step_metrics


def init_state(s: Setup, tx, inputs) -> dict:
  params = s.model.init(jax.random.key(s.config.train.seed), inputs["tokens"][:1],
                        inputs["positions"][:1], task_ids_B=inputs["task_ids"][:1])["params"]
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}


def train(config: ExperimentConfig, workdir: str, *, until: int | None = None):
  """Trains (or resumes) a multitask run; returns (setup, params)."""
  from lengthgen.checkpointing import Checkpointer
  from lengthgen.train import NonFiniteLoss, make_optimizer
  t = config.train
  s = setup(config)
  tx = make_optimizer(t)
  state = init_state(s, tx, training_inputs(s, 0))
  ckpt = Checkpointer(workdir, max_to_keep=t.keep_checkpoints)
  start, state = ckpt.resume(state)
  log = metrics.MetricsLog(workdir, resume_step=start)
  weights = tuple(sp.weight for sp in s.specs)
  step_fn = jax.jit(functools.partial(train_step, model=s.model, tx=tx, names=tuple(s.names),
                                      weights=weights), donate_argnums=0)
  key = jax.random.key(t.seed + 1)
  progress = metrics.Progress(t.steps, start, t.log_every)
  stop = t.steps if until is None else min(until, t.steps)
  try:
    for step in range(start, stop):
      state, step_metrics = step_fn(state, training_inputs(s, step), key)
      done = step + 1
      shown = None
      if done % t.log_every == 0 or done == t.steps or done % t.checkpoint_every == 0 \
          or done == stop:
        m = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
        if not np.isfinite(m["loss"]):
          raise NonFiniteLoss(f"training loss is {m['loss']} at step {done}; stopping. "
                              "Lower config.train.learning_rate or check the data.")
        if done % t.log_every == 0 or done == t.steps:
          log.write(done, "train", **m)
          shown = (done, m)
        if done % t.checkpoint_every == 0 or done == stop:
          ckpt.save(done, state)
      progress.update(done, shown)
  finally:
    progress.close()
    ckpt.close()
  return s, state["params"]


@functools.partial(jax.jit, static_argnames=("model",))
def eval_step(params, inputs, *, model):
  logits = model.apply({"params": params}, inputs["tokens"], inputs["positions"],
                       task_ids_B=inputs["task_ids"], lengths=inputs["lengths"], train=False)
  return metrics.masked_accuracies(logits, inputs["targets"], inputs["loss_mask"])


def evaluate_length(s: Setup, params, k: int, length: int) -> dict:
  """Exact match and token accuracy of task ``k`` at one length (as ``evaluate``)."""
  config, e = s.config, s.config.eval
  rng = data.eval_rng(config.train.seed, length)
  batch = to_union(s.specs[k].task.sample(rng, e.num_examples, length), s, k)
  batch = pad_batch(batch, data.round_up(batch.tokens.shape[1], e.bucket))
  inputs = _inputs(batch, np.full(e.num_examples, k), s, rng, train=False)
  size = evaluate.eval_batch_size(config, batch.tokens.shape[1])
  return evaluate.length_row(lambda chunk: eval_step(params, chunk, model=s.model), inputs,
                             length, size)


def evaluate_all(s: Setup, params) -> dict:
  """results.json: the main task's DESIGN.md record plus ``tasks`` (each hint's rows, score)."""
  rows = [[evaluate_length(s, params, k, n) for n in evaluate.eval_lengths(s.config)]
          for k in range(len(s.specs))]
  tasks = {sp.name: {"eval": r, "score": evaluate.summarize(r, s.config),
                     "weight": sp.weight, "fraction": sp.fraction}
           for sp, r in zip(s.specs[1:], rows[1:])}
  return evaluate.results_record(rows[0], s.config, extra={
      "hints": [sp.name for sp in s.specs[1:]], "multitask_head": s.config.multitask_head,
      "tasks": tasks})


def train_and_evaluate(config: ExperimentConfig, workdir: str, *, overwrite: bool = False,
                       new_run: bool = False, verbose: bool = True) -> dict:
  """``lengthgen.train.train_and_evaluate`` for configs with hints."""
  from lengthgen import plotting
  from lengthgen.train import compute_record, prepare_workdir
  prepare_workdir(config, workdir, overwrite=overwrite, new_run=new_run)
  start = time.perf_counter()
  s, params = train(config, workdir)
  train_seconds = time.perf_counter() - start
  results = evaluate_all(s, params)
  results["compute"] = compute_record(train_seconds,
                                      time.perf_counter() - start - train_seconds)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  log = metrics.MetricsLog(workdir, resume_step=config.train.steps)
  log.write(config.train.steps, "eval", **results["score"],
            **{f"{k}_{name}": v for name, r in results["tasks"].items()
               for k, v in r["score"].items() if k != "metric"})
  runs = [results] + [{**results, **r} for r in results["tasks"].values()]
  plotting.plot_length_generalization(runs, os.path.join(workdir, "length_generalization.png"),
                                      labels=s.names)
  if verbose:
    print(evaluate.format_table(results["eval"], config), flush=True)
    for name, r in results["tasks"].items():
      sc = r["score"]
      fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
      print(f"hint {name}: {sc['metric']} in-distribution {fmt(sc['in_distribution'])}, "
            f"beyond training {fmt(sc['out_of_distribution'])}", flush=True)
  return results

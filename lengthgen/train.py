"""Training: one loop for every run, a pure jitted ``train_step`` and ``train_and_evaluate``.

A run trains a mixture of tasks (``lengthgen.build``): the main task and its hint tasks; a
single-task run is the one-task mixture. Every feature works for every run: ``num_seeds``
(vmapped models), ``init_from``, data parallelism and FSDP over several devices, multi-host
(only process 0 writes), resume and the non-finite-loss stop.

The workdir owns the run (``lengthgen.workdir``; layout in docs/workdir.md). Rerunning with the
same workdir resumes from the newest good checkpoint; the data of step s is a function of
(seed, s) and the dropout key is ``fold_in(key, s)``, so a resumed run ends exactly where an
uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lengthgen import build, data, evaluate, metrics, parallel, plotting
from lengthgen.build import Setup, make_optimizer
from lengthgen.checkpointing import Checkpointer, DiskFull
from lengthgen.config import ExperimentConfig, TrainConfig
from lengthgen.parallel.training import DataParallel
from lengthgen.workdir import (WorkdirBusy, WorkdirConflict, initial_state, parent_params,
                               prepare_workdir, stack)
from lengthgen.workdir import lock as workdir_lock


class NonFiniteLoss(FloatingPointError):
  """The training loss or the training state became NaN or Inf."""


@jax.jit
def _all_finite(tree) -> jax.Array:
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def loss_fn(params, inputs, key, *, setup: Setup, train: bool):
  """``sum_k weight_k * L_k`` over the mixture's tasks, and the step's metrics.

  ``L_k`` is the masked mean cross-entropy of task k's supervised tokens. The metrics are the
  main task's ``loss``-free ``token_accuracy`` and ``exact_match`` plus the total ``loss``;
  a mixture adds ``loss_NAME``, ``token_accuracy_NAME`` and ``exact_match_NAME`` per task.
  """
  logits = setup.model.apply({"params": params}, inputs["tokens"], inputs["positions"],
                             lengths=inputs["lengths"], task_ids_B=inputs["task_ids"],
                             train=train, rngs={"dropout": key})
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs["targets"])
  acc = metrics.masked_accuracies(logits, inputs["targets"], inputs["loss_mask"])
  loss, out = 0.0, {}
  for k, (name, weight) in enumerate(zip(setup.names, setup.weights)):
    in_task = inputs["task_ids"] == k
    mask = inputs["loss_mask"] & in_task[:, None]
    task_loss = jnp.sum(ce * mask) / jnp.maximum(mask.sum(), 1)
    loss = loss + weight * task_loss
    has_answer = in_task & (acc["total"] > 0)
    out[f"loss_{name}"] = task_loss
    out[f"token_accuracy_{name}"] = (jnp.sum(acc["correct"] * in_task)
                                     / jnp.maximum(jnp.sum(acc["total"] * in_task), 1))
    out[f"exact_match_{name}"] = (jnp.sum(acc["exact"] & has_answer)
                                  / jnp.maximum(has_answer.sum(), 1))
  main = setup.names[0]
  out["token_accuracy"], out["exact_match"] = (out[f"token_accuracy_{main}"],
                                               out[f"exact_match_{main}"])
  if len(setup.names) == 1:  # a single task: its metrics once, under the plain names
    out = {k: v for k, v in out.items() if not k.endswith(f"_{main}")}
  out["loss"] = loss
  return loss, out


def train_step(state, inputs, key, *, setup: Setup, tx, schedule=None):
  """One optimizer step; pure. The dropout key is fold_in(key, step).

  The metrics add ``grad_norm`` (global L2 norm of the gradients, before clipping) and
  ``update_norm`` (of the parameter change this step made); with ``schedule``
  (``build.learning_rate_schedule``) also the step's ``learning_rate``.
  """
  step_key = jax.random.fold_in(key, state["step"])
  grad_fn = jax.value_and_grad(functools.partial(loss_fn, setup=setup, train=True),
                               has_aux=True)
  (_, step_metrics), grads = grad_fn(state["params"], inputs, step_key)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  step_metrics["grad_norm"] = optax.tree.norm(grads)
  step_metrics["update_norm"] = optax.tree.norm(updates)
  if schedule is not None:
    step_metrics["learning_rate"] = schedule(state["step"])
  return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, step_metrics


def train(config: ExperimentConfig, workdir: str, *, setup: Setup | None = None,
          until: int | None = None, tensorboard: bool = True) -> tuple[Setup, dict]:
  """Trains (or resumes) to ``config.train.steps``; returns (setup, params).

  ``params`` has a leading seed axis when ``num_seeds > 1``. ``until`` stops early after
  that many steps (checkpointing there), as a crash would, so a later call resumes; the
  schedule still follows ``config.train.steps``. ``tensorboard`` also writes the logged
  metrics as TensorBoard summaries (``WORKDIR/tensorboard/``).
  """
  if setup is None:
    setup = build.setup(build.validate(config))
  with _lock(workdir):
    setup, params, _ = _train(config, workdir, setup, until, tensorboard)
    return setup, params


def _lock(workdir: str):
  """The workdir's lock on process 0 (the one that writes the workdir's files)."""
  return workdir_lock(workdir) if parallel.is_main_process() else contextlib.nullcontext()


def _train(config: ExperimentConfig, workdir: str, setup: Setup, until: int | None,
           tensorboard: bool):
  """``train`` under the workdir's lock; returns (setup, params, the step it started from)."""
  t = config.train
  tx = make_optimizer(t)
  seeds = [c.train.seed for c in build.seed_configs(config)]
  many = len(seeds) > 1
  if many:
    inputs_of = lambda step: stack([data.training_inputs(setup, step, s) for s in seeds])
  else:
    inputs_of = lambda step: data.training_inputs(setup, step)
  state = initial_state(setup, tx)
  # More than one device: data parallel over a "data" mesh (lengthgen.parallel); the batch of
  # (seed, step) is split over the devices, the state replicated or FSDP-sharded.
  dp = (DataParallel.create(t.param_sharding, model_axis=many) if jax.device_count() > 1
        else None)
  if dp is not None:
    state = dp.put_state(state)
    host_inputs_of = inputs_of
    inputs_of = lambda step: dp.inputs(host_inputs_of(step))
  ckpt = Checkpointer(workdir, max_to_keep=t.keep_checkpoints)
  start, state = ckpt.resume(state)
  if not start and t.init_from:
    state = {**state, "params": parent_params(t.init_from, state["params"], len(seeds))}
    if dp is not None:
      state = dp.put_state(state)
    logging.info("Fine-tuning from the parameters of %s", t.init_from)
  log = (metrics.MetricsLog(workdir, resume_step=start, tensorboard=tensorboard)
         if parallel.is_main_process() else None)  # only process 0 writes metrics
  step = functools.partial(train_step, setup=setup, tx=tx,
                           schedule=build.learning_rate_schedule(t))
  step = jax.vmap(step) if many else step
  step_fn = jax.jit(step, donate_argnums=0) if dp is None else dp.jit_step(step, state)
  key = jax.random.key(t.seed + 1)
  if many:
    key = jax.vmap(jax.random.key)(jnp.asarray([s + 1 for s in seeds]))
  if dp is not None:
    key = dp.put_replicated(key)
  progress = metrics.Progress(t.steps, start, t.log_every)
  last_good = start or None

  def where() -> str:
    return (f"the last good checkpoint is step {last_good} in {ckpt.directory}"
            if last_good is not None else "no checkpoint was saved before it")

  def read(step, device_metrics):
    """Fetches a step's metrics and stops the run if its loss is not finite."""
    per_seed = {k: np.atleast_1d(np.asarray(v, np.float64))
                for k, v in jax.device_get(device_metrics).items()}
    m = {k: float(v.mean()) for k, v in per_seed.items()}
    if many:
      m["loss_per_seed"] = [float(x) for x in per_seed["loss"]]
    if not np.isfinite(per_seed["loss"]).all():
      raise NonFiniteLoss(f"training loss is {m['loss']} at step {step}; stopping. {where()}. "
                          "Lower config.train.learning_rate or check the data.")
    return m

  def save(step, state):
    """Checkpoints a finite state; a non-finite one stops the run, a full disk too."""
    if not bool(_all_finite(state)):
      raise NonFiniteLoss(f"the training state has NaN or Inf values after step {step} (the "
                          f"update overflowed); stopping without saving it. {where()}. Lower "
                          "config.train.learning_rate or check the data.")
    try:
      ckpt.save(step, state)
    except DiskFull as e:
      raise DiskFull(e.errno, f"{e.strerror}; {where()}. Free some space and rerun the same "
                     "command to resume.") from e

  pending = None  # (step, device metrics): read one step late so the device never waits
  stop = t.steps if until is None else min(until, t.steps)
  try:
    for step in range(start, stop):
      state, step_metrics = step_fn(state, inputs_of(step), key)
      done = step + 1
      shown = None
      if pending is not None:
        shown = _log(log, pending[0], read(*pending), t)
      pending = (done, step_metrics)
      if done % t.checkpoint_every == 0 or done == stop:
        shown = _log(log, done, read(*pending), t)
        pending = None
        save(done, state)
        last_good = done
        if log is not None:
          log.flush()  # TensorBoard shows at least what the checkpoint holds
      progress.update(done, shown)
  finally:
    progress.close()
    ckpt.close()
    if log is not None:
      log.close()
  params = state["params"] if dp is None else dp.gather(state["params"])
  return setup, params, start


def _log(log, step, m, t: TrainConfig):
  """Writes the metrics of log steps; returns (step, metrics) if written, else None."""
  if step % t.log_every == 0 or step == t.steps:
    if log is not None:
      log.write(step, "train", **m)
    return step, m
  return None


def compute_record(train_seconds: float, eval_seconds: float, *, num_seeds: int = 1,
                   resumed_from_step: int = 0) -> dict:
  """What a run cost: wall seconds of this invocation. A resumed run counts only its own part:
  ``resumed_from_step`` (0 for a run trained from scratch) says where that part began."""
  device = jax.devices()[0]
  return {"train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
          "resumed_from_step": resumed_from_step,
          "num_seeds_in_program": num_seeds, "device": device.device_kind,
          "device_count": jax.device_count(), "backend": jax.default_backend(),
          "jax": jax.__version__}


def train_and_evaluate(config: ExperimentConfig, workdir: str, *, overwrite: bool = False,
                       new_run: bool = False, verbose: bool = True,
                       tensorboard: bool = True) -> dict:
  """Validates, trains, evaluates every length of every task, writes results.json and the
  figure; returns the results.

  Every configuration check runs before the workdir is touched. ``verbose`` logs the
  per-length table; ``tensorboard`` also writes TensorBoard summaries of the training and
  evaluation metrics and the figure (``WORKDIR/tensorboard/``).
  """
  setup = build.setup(build.validate(config))
  with _lock(workdir):
    return _train_and_evaluate(config, workdir, setup, overwrite, new_run, verbose,
                               tensorboard)


def _train_and_evaluate(config, workdir, setup, overwrite, new_run, verbose,
                        tensorboard) -> dict:
  main = parallel.is_main_process()  # only process 0 writes the workdir's files
  if main:
    prepare_workdir(config, workdir, overwrite=overwrite, new_run=new_run)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("lengthgen.prepare_workdir")
  start = time.perf_counter()
  setup, params, first_step = _train(config, workdir, setup, None, tensorboard)
  train_seconds = time.perf_counter() - start
  seeds = build.seed_configs(config)
  if len(seeds) == 1:
    results = evaluate.run_record(setup, params, config)
  else:
    per_seed = [evaluate.run_record(setup, jax.tree.map(lambda x, i=i: x[i], params), c)
                for i, c in enumerate(seeds)]
    keep = ("seed", "eval", "score", "tasks")
    results = {**per_seed[0], "num_seeds": len(seeds),
               "seeds": [{k: r[k] for k in keep if k in r} for r in per_seed],
               "score_over_seeds": evaluate.score_over_seeds([r["score"] for r in per_seed])}
  results["compute"] = compute_record(train_seconds, time.perf_counter() - start - train_seconds,
                                      num_seeds=len(seeds), resumed_from_step=first_step)
  if not main:
    return results
  path = os.path.join(workdir, "results.json")
  with open(f"{path}.tmp", "w") as f:  # renamed into place: a results.json is never partial
    json.dump(results, f, indent=2)
  os.replace(f"{path}.tmp", path)
  hint_scores = {f"{k}_{name}": v for name, r in results.get("tasks", {}).items()
                 for k, v in r["score"].items() if k != "metric"}
  log = metrics.MetricsLog(workdir, resume_step=config.train.steps, tensorboard=tensorboard)
  try:
    log.replace(config.train.steps, "eval", **results["score"], **hint_scores)
    figure = os.path.join(workdir, "length_generalization.png")
    _plot(results, figure)
    log.image("eval/length_generalization", config.train.steps, figure)
  finally:
    log.close()
  if verbose:
    _log_summary(results, config)
  return results


def _plot(results: dict, path: str) -> None:
  """One curve per seed and task: the main task's and each hint task's rows."""
  runs, labels = [], []
  for r in results.get("seeds", [results]):
    for name, record in [(results["task"], r)] + list(r.get("tasks", {}).items()):
      runs.append({**results, **record})
      parts = ([f"seed {r['seed']}"] if "seeds" in results else []) + (
          [name] if "tasks" in results else [])
      labels.append(" ".join(parts))
  plotting.plot_length_generalization(runs, path, labels=labels if len(runs) > 1 else None)


def _log_summary(results: dict, config: ExperimentConfig) -> None:
  fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
  lines = [evaluate.format_table(results["eval"], config)]
  for name, r in results.get("tasks", {}).items():
    sc = r["score"]
    lines.append(f"hint {name}: {sc['metric']} in-distribution {fmt(sc['in_distribution'])}, "
                 f"beyond training {fmt(sc['out_of_distribution'])}")
  if "score_over_seeds" in results:
    spread = results["score_over_seeds"]
    fmt_spread = lambda v: "n/a" if v is None else f"{v['mean']:.3f} ± {v['std']:.3f}"
    lines.append(f"(table: seed {config.train.seed}) over {results['num_seeds']} seeds, "
                 f"{spread['metric']}: in-distribution {fmt_spread(spread['in_distribution'])}, "
                 f"beyond training {fmt_spread(spread['out_of_distribution'])}")
  logging.info("results of %s:\n%s", config.task, "\n".join(lines))


__all__ = ["DiskFull", "NonFiniteLoss", "WorkdirBusy", "WorkdirConflict", "loss_fn", "train",
           "train_and_evaluate", "train_step"]

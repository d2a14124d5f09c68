"""Training: a pure jitted ``train_step`` and ``train_and_evaluate(config, workdir)``.

The workdir owns the run (layout in DESIGN.md). Rerunning with the same workdir resumes from
the newest good checkpoint; the data of step s is a function of (seed, s) and the dropout key
is ``fold_in(key, s)``, so a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lengthgen.tasks as tasks_lib
from lengthgen import data, evaluate, metrics, parallel, plotting
from lengthgen.checkpointing import Checkpointer
from lengthgen.config import ConfigError, ExperimentConfig, TrainConfig
from lengthgen.model import Transformer
from lengthgen.parallel.training import DataParallel


class WorkdirConflict(ConfigError):
  """The workdir holds a run with a different config."""


class NonFiniteLoss(FloatingPointError):
  """The training loss became NaN or Inf."""


def make_optimizer(t: TrainConfig) -> optax.GradientTransformation:
  """AdamW with linear warm-up and cosine decay, after global-norm gradient clipping."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, t.learning_rate, warmup_steps=min(t.warmup_steps, t.steps),
      decay_steps=max(t.steps, 1), end_value=0.0)
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  return optax.chain(
      optax.clip_by_global_norm(t.grad_clip),
      optax.adamw(schedule, weight_decay=t.weight_decay, mask=decay_mask))


def build(config: ExperimentConfig):
  """The task and the model of a config."""
  task = tasks_lib.get(config.task, **config.task_options)
  if getattr(task, "kind", "decoder") != config.model.kind:
    raise ConfigError(f"config.model.kind: task {config.task!r} is a {task.kind} task, but "
                      f"the model is a {config.model.kind}; set config.model.kind={task.kind!r}")
  return task, Transformer(config.model, vocab_size=len(task.vocab))


def init_state(model, tx, inputs, seed: int) -> dict:
  params = model.init(jax.random.key(seed), inputs["tokens"][:1], inputs["positions"][:1])["params"]
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}


def loss_and_metrics(params, inputs, key, *, model, train: bool):
  logits = model.apply({"params": params}, inputs["tokens"], inputs["positions"],
                       lengths=inputs["lengths"], train=train, rngs={"dropout": key})
  mask = inputs["loss_mask"]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, inputs["targets"])
  loss = jnp.sum(ce * mask) / jnp.maximum(mask.sum(), 1)
  acc = metrics.masked_accuracies(logits, inputs["targets"], mask)
  has_answer = acc["total"] > 0
  return loss, {
      "loss": loss,
      "token_accuracy": acc["correct"].sum() / jnp.maximum(acc["total"].sum(), 1),
      "exact_match": jnp.sum(acc["exact"]) / jnp.maximum(has_answer.sum(), 1),
  }


def train_step(state, inputs, key, *, model, tx):
  """One optimizer step; pure. The dropout key is fold_in(key, step)."""
  step_key = jax.random.fold_in(key, state["step"])
  grad_fn = jax.value_and_grad(functools.partial(loss_and_metrics, model=model, train=True),
                               has_aux=True)
  (_, step_metrics), grads = grad_fn(state["params"], inputs, step_key)
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  step_metrics["grad_norm"] = optax.tree.norm(grads)
  return {"step": state["step"] + 1, "params": params, "opt_state": opt_state}, step_metrics


_RUN_OUTPUTS = ("config.json", "checkpoints", "metrics.jsonl", "results.json",
                "length_generalization.png")


def prepare_workdir(config: ExperimentConfig, workdir: str, *, overwrite: bool = False,
                    new_run: bool = False) -> None:
  """Creates the workdir, or checks that an existing one holds the same config.

  Raises:
    WorkdirConflict: the workdir's config.json differs (the message lists the differences),
      unless ``overwrite`` (delete the previous run's outputs) or ``new_run`` (move them to
      ``WORKDIR/previous_runs/<n>/`` and start afresh; nothing is lost).
  """
  if overwrite and new_run:
    raise ConfigError("choose one of --overwrite and --new_run, not both")
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  new = json.loads(json.dumps(config.to_dict()))
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    try:  # a field added after that run was written takes its default, as it did then
      old = json.loads(json.dumps(ExperimentConfig.from_dict(old).to_dict()))
    except (ValueError, TypeError):
      pass  # a field this version no longer has: compare as written (the diff names it)
    if old != new:
      if not (overwrite or new_run):
        diff = "\n".join(f"  {k}: {a!r} (in workdir) -> {b!r} (now)"
                         for k, a, b in _diff(old, new))
        raise WorkdirConflict(
            f"workdir {workdir} holds a run with a different config:\n{diff}\n"
            "Use another --workdir, --new_run to keep that run under previous_runs/ and start "
            "a new one here, or --overwrite to delete it.")
      archive = None
      if new_run:
        n = 1
        while os.path.exists(os.path.join(workdir, "previous_runs", str(n))):
          n += 1
        archive = os.path.join(workdir, "previous_runs", str(n))
        os.makedirs(archive)
      for name in _RUN_OUTPUTS:
        p = os.path.join(workdir, name)
        if not os.path.exists(p):
          continue
        if archive is not None:
          shutil.move(p, os.path.join(archive, name))
        elif os.path.isdir(p):
          shutil.rmtree(p)
        else:
          os.remove(p)
  with open(path, "w") as f:
    json.dump(new, f, indent=2)


def _diff(old, new, prefix=""):
  keys = sorted(set(old) | set(new)) if isinstance(old, dict) and isinstance(new, dict) else None
  if keys is None:
    if old != new:
      yield prefix, old, new
    return
  for k in keys:
    yield from _diff(old.get(k, "<absent>"), new.get(k, "<absent>"), f"{prefix}.{k}".lstrip("."))


def seed_configs(config: ExperimentConfig) -> list[ExperimentConfig]:
  """One single-seed config per model of ``num_seeds``: seeds seed, seed+1, ..."""
  t = config.train
  return [dataclasses.replace(config, train=dataclasses.replace(t, seed=t.seed + i, num_seeds=1))
          for i in range(t.num_seeds)]


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def restore_checkpoint(workdir: str, *, what: str = "workdir"):
  """(config, task, model, step, state) of the newest usable checkpoint of a workdir.

  The workdir's own config.json rebuilds its state so orbax can restore it; with
  ``num_seeds > 1`` every leaf of the state has a leading seed axis. ``what`` prefixes the
  error messages (the config field or argument that named the workdir).
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise ConfigError(f"{what}: {workdir} is not a workdir (no config.json)")
  with open(path) as f:
    config = ExperimentConfig.from_dict(json.load(f))
  task, model = build(config)
  tx = make_optimizer(config.train)
  seeds = seed_configs(config)

  def abstract_state():
    states = [init_state(model, tx, data.training_inputs(c, task, 0), c.train.seed)
              for c in seeds]
    return _stack(states) if len(states) > 1 else states[0]

  ckpt = Checkpointer(workdir)
  try:
    restored = ckpt.restore_latest(jax.eval_shape(abstract_state))
  finally:
    ckpt.close()
  if restored is None:
    raise ConfigError(f"{what}: {workdir} has no usable checkpoint")
  return config, task, model, restored[0], restored[1]


def parent_params(parent_workdir: str, like_params):
  """The parameters of a parent run's newest checkpoint, for fine-tuning (of its first seed
  when it trained several).

  The parameter tree must match this run's model (the same architecture; encodings and lengths
  may differ where they own no parameters).
  """
  parent, _, _, _, state = restore_checkpoint(parent_workdir, what="config.train.init_from")
  if parent.train.num_seeds > 1:
    state = jax.tree.map(lambda x: x[0], state)
  params = state["params"]
  want = jax.tree.map(lambda x: (x.shape, str(x.dtype)), like_params)
  got = jax.tree.map(lambda x: (x.shape, str(x.dtype)), params)
  if want != got:
    diff = [f"  {'/'.join(str(getattr(k, 'key', k)) for k in kp)}"
            for kp, _ in jax.tree_util.tree_flatten_with_path(want)[0]]
    raise ConfigError(
        f"config.train.init_from: the parameters of {parent_workdir} do not match this model "
        f"(parent: {parent.model.positional}, {parent.model.num_layers} layers, width "
        f"{parent.model.width}); this model expects:\n" + "\n".join(diff[:20]))
  return params


def train(config: ExperimentConfig, workdir: str, *, task=None, model=None,
          until: int | None = None):
  """Trains (or resumes) to ``config.train.steps``; returns (model, params, task).

  ``until`` stops early after that many steps (checkpointing there), as a crash would, so a
  later call resumes; the schedule still follows ``config.train.steps``.
  """
  t = config.train
  if task is None or model is None:
    task, model = build(config)
  tx = make_optimizer(t)
  seeds = seed_configs(config)
  many = len(seeds) > 1
  inputs_of = lambda step: _stack([data.training_inputs(c, task, step) for c in seeds])
  state = _stack([init_state(model, tx, data.training_inputs(c, task, 0), c.train.seed)
                  for c in seeds])
  if not many:
    inputs_of = lambda step: data.training_inputs(config, task, step)
    state = jax.tree.map(lambda x: x[0], state)
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
    if many:
      raise ConfigError("config.train.init_from fine-tunes one model; set num_seeds=1")
    state = {**state, "params": parent_params(t.init_from, state["params"])}
    if dp is not None:
      state = dp.put_state(state)
    print(f"Fine-tuning from the parameters of {t.init_from}", flush=True)
  log = (metrics.MetricsLog(workdir, resume_step=start) if parallel.is_main_process()
         else None)  # only process 0 writes metrics
  step = functools.partial(train_step, model=model, tx=tx)
  step = jax.vmap(step) if many else step
  step_fn = jax.jit(step, donate_argnums=0) if dp is None else dp.jit_step(step, state)
  key = jax.random.key(t.seed + 1)
  if many:
    key = jax.vmap(jax.random.key)(jnp.asarray([c.train.seed + 1 for c in seeds]))
  if dp is not None:
    key = dp.put_replicated(key)
  progress = metrics.Progress(t.steps, start, t.log_every)
  last_good = start or None

  def read(step, device_metrics):
    """Fetches a step's metrics and stops the run if its loss is not finite."""
    per_seed = {k: np.atleast_1d(np.asarray(v, np.float64))
                for k, v in jax.device_get(device_metrics).items()}
    m = {k: float(v.mean()) for k, v in per_seed.items()}
    if many:
      m["loss_per_seed"] = [float(x) for x in per_seed["loss"]]
    if not np.isfinite(per_seed["loss"]).all():
      where = (f"the last good checkpoint is step {last_good} in {ckpt.directory}"
               if last_good is not None else "no checkpoint was saved before it")
      raise NonFiniteLoss(f"training loss is {m['loss']} at step {step}; stopping. {where}. "
                          "Lower config.train.learning_rate or check the data.")
    return m

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
        shown = _log(log, done, read(*pending), t)  # never checkpoint a non-finite state
        pending = None
        ckpt.save(done, state)
        last_good = done
      progress.update(done, shown)
  finally:
    progress.close()
    ckpt.close()
  params = state["params"] if dp is None else dp.gather(state["params"])
  return model, params, task


def _log(log, step, m, t: TrainConfig):
  """Writes the metrics of log steps; returns (step, metrics) if written, else None."""
  if step % t.log_every == 0 or step == t.steps:
    if log is not None:
      log.write(step, "train", **m)
    return step, m
  return None


def compute_record(train_seconds: float, eval_seconds: float, *, num_seeds: int = 1) -> dict:
  """What a run cost: wall seconds of this invocation (a resumed run counts only its own part)."""
  device = jax.devices()[0]
  return {"train_seconds": round(train_seconds, 2), "eval_seconds": round(eval_seconds, 2),
          "num_seeds_in_program": num_seeds, "device": device.device_kind,
          "device_count": jax.device_count(), "backend": jax.default_backend(),
          "jax": jax.__version__}


def train_and_evaluate(config: ExperimentConfig, workdir: str, *, overwrite: bool = False,
                       new_run: bool = False, verbose: bool = True) -> dict:
  """Trains, evaluates every length, writes results.json and the figure; returns the results."""
  if config.hints:  # task hinting: a main task with hint tasks (lengthgen.multitask)
    from lengthgen import multitask
    return multitask.train_and_evaluate(config, workdir, overwrite=overwrite, new_run=new_run,
                                        verbose=verbose)
  main = parallel.is_main_process()  # only process 0 writes the workdir's files
  if main:
    prepare_workdir(config, workdir, overwrite=overwrite, new_run=new_run)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices("lengthgen.prepare_workdir")
  task, model = build(config)
  start = time.perf_counter()
  model, params, task = train(config, workdir, task=task, model=model)
  train_seconds = time.perf_counter() - start
  seeds = seed_configs(config)
  if len(seeds) == 1:
    rows = evaluate.evaluate(model, params, config, task)
    results = evaluate.results_record(rows, config)
  else:
    per_seed = [evaluate.results_record(
        evaluate.evaluate(model, jax.tree.map(lambda x, i=i: x[i], params), c, task), c)
        for i, c in enumerate(seeds)]
    rows = per_seed[0]["eval"]
    results = {**per_seed[0], "num_seeds": len(seeds),
               "seeds": [{"seed": r["seed"], "eval": r["eval"], "score": r["score"]}
                         for r in per_seed],
               "score_over_seeds": evaluate.score_over_seeds([r["score"] for r in per_seed])}
  results["compute"] = compute_record(train_seconds, time.perf_counter() - start - train_seconds,
                                      num_seeds=len(seeds))
  if not main:
    return results
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(results, f, indent=2)
  metrics.MetricsLog(workdir, resume_step=config.train.steps).write(
      config.train.steps, "eval", **results["score"])
  runs = [{**results, **r} for r in results.get("seeds", [results])]
  plotting.plot_length_generalization(runs, os.path.join(workdir, "length_generalization.png"),
                                      labels=[f"seed {r['seed']}" for r in runs]
                                      if len(runs) > 1 else None)
  if verbose:
    print(evaluate.format_table(rows, config), flush=True)
    if "score_over_seeds" in results:
      spread = results["score_over_seeds"]
      fmt = lambda v: "n/a" if v is None else f"{v['mean']:.3f} ± {v['std']:.3f}"
      print(f"(table: seed {config.train.seed}) over {results['num_seeds']} seeds, "
            f"{spread['metric']}: in-distribution {fmt(spread['in_distribution'])}, beyond "
            f"training {fmt(spread['out_of_distribution'])}", flush=True)
  return results


__all__ = ["NonFiniteLoss", "WorkdirConflict", "build", "make_optimizer", "train",
           "train_and_evaluate", "train_step"]

"""From a config to the objects of a run: validation, the task mixture, model, optimizer, state.

A run trains a *mixture* of tasks: the main task (``config.task``) and its hint tasks
(``config.hints``; task hinting, Awasthi & Gupta 2023). A single-task run is the one-task
mixture, and every part of the loop (``lengthgen.train``) treats both alike.

* Vocabulary: the union of every task's symbols by name, the main task's first (its ids are
  unchanged); each task's token ids are remapped into it. ``multitask_head="indicator"`` adds a
  task token ``<task:NAME>`` per task, prepended to each of its sequences.
* Readout: ``per_task`` gives the model's output head one readout per task, selected by the
  example's task id (the input embedding keeps one row per vocabulary entry); ``indicator``
  shares one readout.
* Batches: ``fraction`` of each training batch comes from each hint task, the rest from the
  main task (``Setup.batch_counts``).
* Loss: ``sum_k weight_k * L_k``, ``L_k`` the masked mean cross-entropy of task k's supervised
  tokens in the batch (main task weight 1).

``validate`` runs every check that needs the registries, before anything touches a workdir.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lengthgen.attention as attn
import lengthgen.positional as pe
import lengthgen.tasks as tasks_lib
from lengthgen.attention.layer import validate_attention_config
from lengthgen.config import ConfigError, ExperimentConfig, TrainConfig
from lengthgen.heads import HEADS
from lengthgen.model import Transformer
from lengthgen.parallel.mesh import PARAM_SHARDINGS
from lengthgen.tasks import Batch, Task


def _choice(value, valid, path):
  if value not in valid:
    raise ConfigError(f"{path}: unknown value {value!r}; valid values: {', '.join(valid)}")


def _task(name: str, options: dict, path: str) -> Task:
  _choice(name, list(tasks_lib.TASKS), path)
  try:
    return tasks_lib.get(name, **options)
  except (ValueError, TypeError) as e:
    options_path = (path.removesuffix("name") + "options" if path.endswith(".name")
                    else path + "_options")  # config.hints[i].options | config.task_options
    raise ConfigError(f"{options_path}: {e}") from None


def _eval_task(config: ExperimentConfig, task: Task) -> Task:
  """The main task as evaluation samples it: ``config.eval.task_options`` over the task's."""
  if not config.eval.task_options:
    return task
  eval_task = _task(config.task, {**config.task_options, **config.eval.task_options},
                    "config.eval.task")  # errors name config.eval.task_options
  if list(eval_task.vocab) != list(task.vocab):
    raise ConfigError("config.eval.task_options: the evaluation task must have the training "
                      f"task's vocabulary; {config.eval.task_options} changes it")
  return eval_task


def validate(config: ExperimentConfig) -> ExperimentConfig:
  """Checks what needs the registries and crosses fields; returns ``config``.

  Raises:
    ConfigError: naming the field and the valid choices.
  """
  task = _task(config.task, config.task_options, "config.task")
  eval_task = _eval_task(config, task)
  m = config.model
  for i, h in enumerate(config.hints):
    hint = _task(h.name, h.options, f"config.hints[{i}].name")
    if hint.kind != "decoder" or m.kind != "decoder":
      raise ConfigError(f"config.hints[{i}]: task hinting needs decoder tasks and "
                        f"config.model.kind='decoder'; got a {hint.kind} hint and a {m.kind} "
                        "model")
  if getattr(task, "kind", "decoder") != m.kind:
    raise ConfigError(f"config.model.kind: task {config.task!r} is a {task.kind} task, but "
                      f"the model is a {m.kind}; set config.model.kind={task.kind!r}")
  if config.hints and config.multitask_head == "per_task" and m.head != "vocab":
    raise ConfigError(f"config.model.head: per_task multitask heads need the 'vocab' head, "
                      f"got {m.head!r}; use config.multitask_head='indicator'")
  _choice(m.positional, list(pe.ENCODINGS), "config.model.positional")
  _choice(m.normalizer, list(attn.NORMALIZERS), "config.model.normalizer")
  _choice(m.attention_implementation, list(attn.IMPLEMENTATIONS),
          "config.model.attention_implementation")
  _choice(m.head, list(HEADS), "config.model.head")
  try:
    validate_attention_config(m)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  try:
    encoding = pe.get(m.positional, **m.positional_options)
  except ValueError as e:
    raise ConfigError(f"config.model.positional_options: {e}") from None
  _choice(config.train.param_sharding, list(PARAM_SHARDINGS), "config.train.param_sharding")
  devices = jax.device_count()
  if devices > 1 and config.train.batch_size % devices:
    raise ConfigError(f"config.train.batch_size: {config.train.batch_size} is not divisible by "
                      f"the {devices} devices that train data parallel; use a multiple of "
                      f"{devices}")
  init_from = config.train.init_from
  if init_from and not os.path.exists(os.path.join(init_from, "config.json")):
    raise ConfigError(f"config.train.init_from: {init_from} is not a workdir (no config.json)")

  # The longest sequence must fit what the position sampler and the encoding support.
  longest = max(config.train.max_length, config.eval.max_length)
  try:
    n = max(task.sample(np.random.default_rng(0), 1, config.train.max_length).tokens.shape[1],
            eval_task.sample(np.random.default_rng(0), 1, config.eval.max_length).tokens.shape[1])
  except ValueError as err:
    raise ConfigError(f"config.eval.max_length / config.train.max_length: {err}") from None
  n += 1 if config.hints and config.multitask_head == "indicator" else 0
  sampler, options = pe.resolve_sampler(encoding, m.positions, m.positions_options)
  _choice(sampler, list(pe.POSITION_SAMPLERS), "config.model.positions")
  try:
    pe.sample_positions(sampler, np.ones((1, n), np.int32), np.random.default_rng(0),
                        train=True, vocab=task.vocab, **options)
  except (ValueError, TypeError) as err:
    raise ConfigError(f"config.model.positions_options: position sampler {sampler!r} cannot "
                      f"produce positions for the longest sequence ({n} tokens): {err}") from None
  limit = encoding.position_limit()
  if limit is not None and n > limit:
    raise ConfigError(
        f"config.model.positional_options: {m.positional!r} supports positions below {limit}, "
        f"but length {longest} of task {config.task!r} needs {n} positions; raise max_length "
        "or lower the lengths")
  return config


def load_config(d) -> ExperimentConfig:
  """``ExperimentConfig.from_dict`` (field checks) followed by ``validate``."""
  return validate(ExperimentConfig.from_dict(d))


@dataclasses.dataclass(frozen=True)
class MixtureTask:
  """One task of the mixture: ``weight`` of its loss, ``fraction`` of each training batch."""

  name: str
  task: Task
  weight: float
  fraction: float
  table: np.ndarray  # task token id -> mixture vocabulary id
  eval_task: Task    # what evaluation samples: ``task`` with config.eval.task_options


@dataclasses.dataclass(frozen=True, eq=False)
class Setup:
  """Everything a run derives from its config: the task mixture, its vocabulary, the model."""

  config: ExperimentConfig
  tasks: tuple[MixtureTask, ...]  # the main task first
  vocab: tuple[str, ...]
  model: Transformer

  @property
  def task(self) -> Task:
    """The main task."""
    return self.tasks[0].task

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(t.name for t in self.tasks)

  @property
  def weights(self) -> tuple[float, ...]:
    return tuple(t.weight for t in self.tasks)

  @property
  def indicator(self) -> bool:
    """Sequences start with their task's token (``multitask_head='indicator'``, with hints)."""
    return len(self.tasks) > 1 and self.config.multitask_head == "indicator"

  def batch_counts(self, batch_size: int) -> list[int]:
    """Examples of each task in a batch: ``round(fraction * B)`` per hint, the rest main."""
    hints = [int(round(t.fraction * batch_size)) for t in self.tasks[1:]]
    return [batch_size - sum(hints)] + hints

  def to_mixture(self, batch: Batch, k: int) -> Batch:
    """Task ``k``'s batch in the mixture vocabulary (with its task token first if any)."""
    table = self.tasks[k].table
    tokens, targets, mask = table[batch.tokens], table[batch.targets], batch.loss_mask
    if self.indicator:
      b = tokens.shape[0]
      token = np.full((b, 1), self.vocab.index(f"<task:{self.names[k]}>"), np.int32)
      targets = np.concatenate([tokens[:, :1], targets], axis=1)
      tokens = np.concatenate([token, tokens], axis=1)
      mask = np.concatenate([np.zeros((b, 1), bool), mask], axis=1)
    return Batch(tokens.astype(np.int32), targets.astype(np.int32), mask)


def setup(config: ExperimentConfig) -> Setup:
  """The task mixture and model of a (validated) config."""
  specs = [(config.task, tasks_lib.get(config.task, **config.task_options), 1.0,
            1.0 - sum(h.fraction for h in config.hints))]
  specs += [(h.name, tasks_lib.get(h.name, **h.options), h.weight, h.fraction)
            for h in config.hints]
  vocab = []
  for _, task, _, _ in specs:
    vocab += [v for v in task.vocab if v not in vocab]
  if len(specs) > 1 and config.multitask_head == "indicator":
    vocab += [f"<task:{name}>" for name, *_ in specs]
  index = {v: i for i, v in enumerate(vocab)}
  eval_main = _eval_task(config, specs[0][1])
  mixture = tuple(MixtureTask(name, task, weight, fraction,
                              np.asarray([index[v] for v in task.vocab], np.int32),
                              eval_main if k == 0 else task)
                  for k, (name, task, weight, fraction) in enumerate(specs))
  readouts = len(specs) if len(specs) > 1 and config.multitask_head == "per_task" else 1
  model = Transformer(config.model, vocab_size=len(vocab), num_tasks=readouts)
  return Setup(config, mixture, tuple(vocab), model)


def learning_rate_schedule(t: TrainConfig) -> optax.Schedule:
  """The learning rate of each step: linear warm-up from 0, then cosine decay to 0
  (``lr_schedule="cosine"``) or the peak rate to the end (``"constant"``)."""
  if t.lr_schedule == "constant":
    if t.warmup_steps == 0:
      return optax.constant_schedule(t.learning_rate)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, t.learning_rate, t.warmup_steps),
         optax.constant_schedule(t.learning_rate)], [t.warmup_steps])
  return optax.warmup_cosine_decay_schedule(
      0.0, t.learning_rate, warmup_steps=min(t.warmup_steps, t.steps),
      decay_steps=max(t.steps, 1), end_value=0.0)


def make_optimizer(t: TrainConfig) -> optax.GradientTransformation:
  """AdamW on ``learning_rate_schedule``, after global-norm gradient clipping."""
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  return optax.chain(
      optax.clip_by_global_norm(t.grad_clip),
      optax.adamw(learning_rate_schedule(t), weight_decay=t.weight_decay, mask=decay_mask))


def init_state(model, tx, inputs, seed: int) -> dict:
  """The initial training state {step, params, opt_state} of one seed."""
  params = model.init(jax.random.key(seed), inputs["tokens"][:1], inputs["positions"][:1],
                      task_ids_B=inputs["task_ids"][:1])["params"]
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}


def seed_configs(config: ExperimentConfig) -> list[ExperimentConfig]:
  """One single-seed config per model of ``num_seeds``: seeds seed, seed+1, ..."""
  t = config.train
  return [dataclasses.replace(config, train=dataclasses.replace(t, seed=t.seed + i, num_seeds=1))
          for i in range(t.num_seeds)]


__all__ = ["MixtureTask", "Setup", "init_state", "learning_rate_schedule", "load_config",
           "make_optimizer", "seed_configs", "setup", "validate"]

"""The experiment schema: frozen, hashable dataclasses and their field-level checks.

Config files (``lengthgen/configs/*.py``) build an ``ml_collections.ConfigDict``;
``ExperimentConfig.from_dict`` turns it into frozen dataclasses and checks every field on its
own (unknown keys, types, ranges, fixed choices), naming the field and the valid values when
something is wrong. Checks that need the registries (task, encoding and normalizer names,
their options, whether the longest sequence fits) live one layer up, in
``lengthgen.build.validate``; ``lengthgen.build.load_config`` runs both. This module imports
nothing from lengthgen, so everything else can import it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Mapping


MAX_LENGTH = 2**20  # the largest problem size a config may ask for


class ConfigError(ValueError):
  """A config field is unknown, of the wrong type, out of range or incompatible."""


# Boolean ModelConfig fields that modify the normalizer; results.json and the sweeps name them
# after it, joined with "+": "ssmax+qk_norm".
NORMALIZER_MODIFIERS = ("qk_norm", "length_temperature")


def _json_hash(self) -> int:
  """Hash of the canonical JSON: configs hold dict-valued options and are jit static args."""
  return hash(json.dumps(dataclasses.asdict(self), sort_keys=True, default=str))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The Transformer: causal decoder (default) or non-causal encoder."""

  kind: str = "decoder"            # decoder | encoder
  num_layers: int = 4
  width: int = 128
  num_heads: int = 4
  mlp_ratio: float = 4.0
  dropout: float = 0.0
  positional: str = "nope"         # a name of lengthgen.positional.ENCODINGS
  positional_options: dict = dataclasses.field(default_factory=dict)
  positions: str = "default"       # position sampler: default (the encoding's own) |
                                   # a name of lengthgen.positional.POSITION_SAMPLERS
  positions_options: dict = dataclasses.field(default_factory=dict)
  normalizer: str = "softmax"      # a name of lengthgen.attention.NORMALIZERS
  normalizer_options: dict = dataclasses.field(default_factory=dict)
  length_temperature: bool = False  # softmax logits times a learned per-head scale * log n
  qk_norm: bool = False            # RMS-normalize q and k per head (learned gain), before positions
  window: int | None = None        # sliding-window attention (with global_tokens: Lambda mask)
  global_tokens: int = 0
  distance_cap: bool = True        # Lambda mask + rotary: global tokens seen from <= window away
  attention_implementation: str = "auto"
  head: str = "vocab"              # output head: vocab | pointer (lengthgen.heads.HEADS)
  block: str = "pre_ln"            # pre_ln (GPT-style: LayerNorm, biases, GELU, untied head) |
                                   # post_ln (Vaswani/Deletang encoder: x = LN(x + f(x)), ReLU,
                                   # bias-free attention, sqrt(W)-scaled embedding) |
                                   # t5 (HuggingFace T5 decoder block: RMSNorm, no biases, q.k
                                   # unscaled (softplus normalizers keep their fixed scores),
                                   # ReLU, HF T5 init, head tied to the embedding on W^-0.5 h;
                                   # head="vocab" with one readout only); see lengthgen.model
  dtype: str = "float32"           # compute dtype: float32 | bfloat16

  __hash__ = _json_hash

  @property
  def causal(self) -> bool:
    return self.kind == "decoder"

  @property
  def head_dim(self) -> int:
    return self.width // self.num_heads


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimization and the training-length curriculum (lengths uniform in [min, max])."""

  steps: int = 2000
  batch_size: int = 64
  learning_rate: float = 1e-3
  warmup_steps: int = 100
  lr_schedule: str = "cosine"      # after the linear warm-up: cosine (decay to 0) | constant
  weight_decay: float = 0.01
  grad_clip: float = 1.0
  min_length: int = 1
  max_length: int = 20
  seed: int = 0
  checkpoint_every: int = 500
  log_every: int = 100
  keep_checkpoints: int = 3
  init_from: str | None = None     # fine-tune: start from the params of this parent workdir
  num_seeds: int = 1               # train seeds seed..seed+N-1 at once (vmap over models)
  param_sharding: str = "replicated"  # several devices: replicated | fsdp (lengthgen.parallel)

  __hash__ = _json_hash


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Length-generalization evaluation: every ``stride``-th length in [min, max] (from min)."""

  min_length: int = 1
  max_length: int = 60
  num_examples: int = 512
  batch_size: int = 256
  bucket: int = 32                 # sequences are padded to multiples of this (one compile each)
  max_batch_tokens: int = 262144   # long lengths: fewer examples per batch (memory ~ batch * length)
  score_metric: str = "exact_match"  # exact_match | token_accuracy: what results.json's score averages
  stride: int = 1                  # evaluate min, min+stride, ...: a cheaper sample of lengths
  # Options of the main task that differ at evaluation (merged over config.task_options),
  # e.g. {"operands": "natural"} after training addition on {"operands": "bucket"}.
  task_options: dict = dataclasses.field(default_factory=dict)

  __hash__ = _json_hash


@dataclasses.dataclass(frozen=True)
class HintConfig:
  """A hint task trained with the main task (task hinting, Awasthi & Gupta 2023).

  ``fraction`` of every training batch is drawn from it; its loss enters the total with
  ``weight`` (the main task's weight is 1).
  """

  name: str                        # a name of lengthgen.tasks.TASKS (hint tasks included)
  options: dict = dataclasses.field(default_factory=dict)
  weight: float = 1.0
  fraction: float = 0.5

  __hash__ = _json_hash


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  task: str = "copy"
  task_options: dict = dataclasses.field(default_factory=dict)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  # Task hinting: hint tasks trained with the main task on one trunk; multitask_head:
  # per_task (one readout per task) | indicator (a task token first, one shared readout).
  hints: tuple[HintConfig, ...] = ()
  multitask_head: str = "per_task"

  __hash__ = _json_hash

  @property
  def task_names(self) -> list[str]:
    """The main task, then the hint tasks in config order."""
    return [self.task] + [h.name for h in self.hints]

  def to_dict(self) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
    """The config of a nested mapping, every field checked on its own (see module doc)."""
    config = _build(cls, _plain(d), "config")
    check_fields(config)
    return config


def default_config_dict():
  """Every field with its default, as an ``ml_collections.ConfigDict`` for config files.

  Config files start from this and change what they need, so every field can be overridden
  on the command line (``--config.model.window=64``); optional fields are typed placeholders.
  """
  import ml_collections
  from ml_collections import config_dict

  def convert(cls, instance):
    out = ml_collections.ConfigDict()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
      value = getattr(instance, f.name)
      hint = hints[f.name]
      if dataclasses.is_dataclass(hint):
        out[f.name] = convert(hint, value)
      elif typing.get_origin(hint) is tuple:
        out[f.name] = [dataclasses.asdict(v) for v in value]
      elif value is None:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        out[f.name] = config_dict.placeholder(inner[0] if inner else object)
      else:
        out[f.name] = value
    return out

  return convert(ExperimentConfig, ExperimentConfig())


def _plain(value):
  """ConfigDict / FrozenConfigDict / Mapping -> nested plain dicts; tuples -> lists."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def _build(cls, d, path: str):
  if not isinstance(d, Mapping):
    raise ConfigError(f"{path} must be a mapping of fields, got {type(d).__name__}: {d!r}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - set(fields))
  if unknown:
    raise ConfigError(f"unknown field(s) {', '.join(path + '.' + k for k in unknown)}; "
                      f"valid fields of {path}: {', '.join(fields)}")
  hints = typing.get_type_hints(cls)
  kwargs = {}
  for name, value in d.items():
    kwargs[name] = _convert(hints[name], value, f"{path}.{name}")
  return cls(**kwargs)


def _convert(hint, value, path):
  if dataclasses.is_dataclass(hint):
    return _build(hint, value, path)
  if typing.get_origin(hint) is tuple:  # tuple[Dataclass, ...]: a list of mappings
    item = typing.get_args(hint)[0]
    names = ", ".join(f.name for f in dataclasses.fields(item))
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f"{path} must be a list of {{{names}}} mappings, got "
                        f"{type(value).__name__}: {value!r}")
    return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
  if hint is dict:
    if not isinstance(value, Mapping):
      raise ConfigError(f"{path} must be a mapping, got {type(value).__name__}: {value!r}")
    return dict(value)
  if hint is bool:
    if not isinstance(value, bool):
      raise ConfigError(f"{path} must be true or false, got {value!r}")
    return value
  if hint is int:
    if isinstance(value, bool) or not isinstance(value, int):
      if isinstance(value, float) and value.is_integer():
        return int(value)
      raise ConfigError(f"{path} must be an integer, got {type(value).__name__}: {value!r}")
    return value
  if hint is float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
      raise ConfigError(f"{path} must be a finite number, got {type(value).__name__}: {value!r}")
    return float(value)
  if hint is str:
    if not isinstance(value, str):
      raise ConfigError(f"{path} must be a string, got {type(value).__name__}: {value!r}")
    return value
  origin = typing.get_origin(hint)
  if origin in (typing.Union, types.UnionType):
    args = typing.get_args(hint)
    if value is None and type(None) in args:
      return None
    inner = [a for a in args if a is not type(None)]
    return _convert(inner[0], value, path)
  return value


def _check(ok: bool, path: str, message: str):
  if not ok:
    raise ConfigError(f"{path}: {message}")


def _choice(value, valid, path):
  _check(value in valid, path, f"unknown value {value!r}; valid values: {', '.join(valid)}")


MULTITASK_HEADS = ("per_task", "indicator")
LR_SCHEDULES = ("cosine", "constant")  # TrainConfig.lr_schedule; build.learning_rate_schedule
BLOCKS = ("pre_ln", "post_ln", "t5")  # ModelConfig.block; lengthgen.model builds each


def check_fields(config: ExperimentConfig) -> None:
  """Checks every field that needs no registry: ranges and fixed choices.

  Raises:
    ConfigError: naming the field and what is allowed.
  """
  m = config.model
  _choice(m.kind, ["decoder", "encoder"], "config.model.kind")
  _choice(m.dtype, ["float32", "bfloat16"], "config.model.dtype")
  for name in ("num_layers", "width", "num_heads"):
    _check(getattr(m, name) >= 1, f"config.model.{name}", f"must be >= 1, got {getattr(m, name)}")
  _check(m.width % m.num_heads == 0, "config.model.width",
         f"width {m.width} must be divisible by num_heads {m.num_heads}")
  _check(m.mlp_ratio > 0, "config.model.mlp_ratio", f"must be > 0, got {m.mlp_ratio}")
  _check(0.0 <= m.dropout < 1.0, "config.model.dropout", f"must be in [0, 1), got {m.dropout}")
  _choice(m.block, BLOCKS, "config.model.block")
  if m.block == "t5":  # the tied readout is one vocabulary readout
    _check(m.head == "vocab", "config.model.head",
           f"block='t5' ties the output head to the token embedding, which is supported for "
           f"head='vocab' only; got head={m.head!r} (use block='pre_ln' for it)")
    _check(not (config.hints and config.multitask_head == "per_task"), "config.multitask_head",
           "block='t5' has one tied readout, but per_task with hints needs one readout per "
           "task; use multitask_head='indicator' (one shared readout) or block='pre_ln'")

  t = config.train
  for name in ("steps", "batch_size", "min_length", "max_length", "checkpoint_every",
               "log_every", "keep_checkpoints", "num_seeds"):
    _check(getattr(t, name) >= 1, f"config.train.{name}", f"must be >= 1, got {getattr(t, name)}")
  _check(t.min_length <= t.max_length, "config.train.min_length",
         f"min_length {t.min_length} exceeds max_length {t.max_length}")
  _check(t.learning_rate > 0, "config.train.learning_rate", f"must be > 0, got {t.learning_rate}")
  _choice(t.lr_schedule, LR_SCHEDULES, "config.train.lr_schedule")
  _check(0 <= t.warmup_steps < t.steps, "config.train.warmup_steps",
         f"must be in [0, steps={t.steps}) (the cosine decay needs steps after the warm-up), "
         f"got {t.warmup_steps}")
  _check(t.weight_decay >= 0, "config.train.weight_decay", f"must be >= 0, got {t.weight_decay}")
  _check(t.grad_clip > 0, "config.train.grad_clip", f"must be > 0, got {t.grad_clip}")
  _check(t.seed >= 0, "config.train.seed", f"must be >= 0, got {t.seed}")

  e = config.eval
  for name in ("min_length", "max_length", "num_examples", "batch_size", "bucket",
               "max_batch_tokens"):
    _check(getattr(e, name) >= 1, f"config.eval.{name}", f"must be >= 1, got {getattr(e, name)}")
  _choice(e.score_metric, ["exact_match", "token_accuracy"], "config.eval.score_metric")
  _check(e.stride >= 1, "config.eval.stride", f"must be >= 1, got {e.stride}")
  _check(e.min_length <= e.max_length, "config.eval.min_length",
         f"min_length {e.min_length} exceeds max_length {e.max_length}")
  for path, value in (("config.train.max_length", t.max_length),
                      ("config.eval.max_length", e.max_length)):
    _check(value <= MAX_LENGTH, path, f"must be at most {MAX_LENGTH} (problem size), got {value}")

  _choice(config.multitask_head, MULTITASK_HEADS, "config.multitask_head")
  names = [config.task]
  for i, h in enumerate(config.hints):
    path = f"config.hints[{i}]"
    _check(h.name not in names, f"{path}.name",
           f"task {h.name!r} appears twice (the main task is {config.task!r}); each task may "
           "appear once")
    names.append(h.name)
    _check(h.weight >= 0, f"{path}.weight", f"must be >= 0, got {h.weight}")
    _check(0 < h.fraction < 1 and round(h.fraction * t.batch_size) >= 1, f"{path}.fraction",
           f"must be in (0, 1) and give at least one example of config.train.batch_size="
           f"{t.batch_size}; got {h.fraction}")
  total = sum(h.fraction for h in config.hints)
  _check(total < 1, "config.hints", f"the fractions sum to {total}; they must leave part of "
         "each batch (1 - sum) to the main task")

"""The Task contract shared by every task.

A task turns a problem size (``length``) into a batch of token sequences laid out as
``source, separator, answer``. ``targets[t]`` is the token predicted at position ``t``
(the next token for a causal decoder), and ``loss_mask`` marks the answer predictions,
so the loss and the exact-match metric see only the answer.

Token id 0 is padding in every task's vocabulary, so batches of different lengths can be
right-padded and stacked (``pad_batch``).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np

PAD = "<pad>"
PAD_ID = 0  # PAD's index: the first entry of every task's vocabulary
SEP = "|"
EOS = "<eos>"


@dataclasses.dataclass(frozen=True)
class Batch:
  """A batch of examples: ``tokens``, ``targets`` [B, N] int32, ``loss_mask`` [B, N] bool."""

  tokens: np.ndarray
  targets: np.ndarray
  loss_mask: np.ndarray

  def __post_init__(self):
    shape = self.tokens.shape
    if self.tokens.ndim != 2 or self.targets.shape != shape or self.loss_mask.shape != shape:
      raise ValueError(
          "Batch arrays must share a [batch, length] shape; got tokens "
          f"{self.tokens.shape}, targets {self.targets.shape}, loss_mask {self.loss_mask.shape}")

  @property
  def lengths(self) -> np.ndarray:
    """Number of non-padding tokens of each example, [B]."""
    return (self.tokens != PAD_ID).sum(axis=1).astype(np.int32)


@runtime_checkable
class Task(Protocol):
  """What every task provides; see ``lengthgen.tasks.copy`` for a complete example."""

  name: str
  kind: str          # "decoder" (causal, targets are next tokens) or "encoder" (blank slots)
  vocab: list[str]

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
    ...

  def render(self, row: np.ndarray) -> str:
    ...


def decoder_batch(source: np.ndarray, answer: np.ndarray, sep_id: int, eos_id: int) -> Batch:
  """Lays out ``source | answer <eos>`` for next-token prediction with loss on the answer.

  Args:
    source: [B, S] int token ids of the problem (no padding).
    answer: [B, A] int token ids of the answer (no padding).
    sep_id: id of the separator token.
    eos_id: id of the end-of-sequence token, predicted after the answer.

  Returns:
    tokens = source, sep, answer; targets = tokens shifted left by one with eos last;
    loss_mask is True where the target is an answer token or the final eos.
  """
  b, s = source.shape
  a = answer.shape[1]
  sep = np.full((b, 1), sep_id, dtype=np.int32)
  eos = np.full((b, 1), eos_id, dtype=np.int32)
  tokens = np.concatenate([source, sep, answer], axis=1).astype(np.int32)
  targets = np.concatenate([tokens[:, 1:], eos], axis=1)
  loss_mask = np.zeros(tokens.shape, dtype=bool)
  loss_mask[:, s:] = True  # predictions made at the separator and at every answer token
  del a
  return Batch(tokens, targets, loss_mask)


def pad_batch(batch: Batch, length: int) -> Batch:
  """Right-pads a batch with token 0 (no loss) to ``length`` positions."""
  n = batch.tokens.shape[1]
  if length < n:
    raise ValueError(f"cannot pad a batch of {n} positions to {length}")
  if length == n:
    return batch
  width = ((0, 0), (0, length - n))
  return Batch(np.pad(batch.tokens, width), np.pad(batch.targets, width),
               np.pad(batch.loss_mask, width))


def concat_batches(batches: list[Batch]) -> Batch:
  """Stacks batches along the batch axis, right-padding them to the longest."""
  n = max(b.tokens.shape[1] for b in batches)
  padded = [pad_batch(b, n) for b in batches]
  return Batch(*(np.concatenate([getattr(b, f) for b in padded], axis=0)
                 for f in ("tokens", "targets", "loss_mask")))


def check_bool_options(task, *options: str) -> None:
  """Raises ``ValueError`` naming the task and the option if one of ``options`` of the task
  dataclass ``task`` is not a bool."""
  for option in options:
    value = getattr(task, option)
    if not isinstance(value, bool):
      raise ValueError(f"task {task.name!r}: {option} must be true or false; got {value!r}")


def check_length(task_name: str, length: int, minimum: int = 1, maximum: int | None = None):
  """Raises ``ValueError`` naming the task and the valid range for an impossible length."""
  if not isinstance(length, (int, np.integer)) or length < minimum or (
      maximum is not None and length > maximum):
    upper = "" if maximum is None else f" and at most {maximum}"
    raise ValueError(f"task {task_name!r}: length must be an integer at least {minimum}{upper}; "
                     f"got {length!r}")


def render_tokens(vocab: list[str], row: np.ndarray) -> str:
  """Space-separated tokens of one row, padding dropped."""
  return " ".join(vocab[int(t)] for t in row if int(t) != 0)


def verify_decoder_row(row: np.ndarray, sep_id: int, solve) -> bool:
  """Checks one ``source sep answer`` row (padding allowed) against ``solve(source)``."""
  row = [int(t) for t in row if int(t) != 0]
  if sep_id not in row:
    return False
  cut = row.index(sep_id)
  return row[cut + 1:] == list(solve(row[:cut]))


def examples_per_second(task: Task, batch_size: int, length: int, seconds: float = 0.5) -> float:
  """Generation speed of ``task.sample`` (after one warm-up call), examples per second."""
  import time
  rng = np.random.default_rng(0)
  task.sample(rng, batch_size, length)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    task.sample(rng, batch_size, length)
    n += batch_size
  return n / (time.perf_counter() - start)

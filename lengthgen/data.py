"""Batches for training and evaluation, as pure functions of (seed, step) and (seed, length).

Nothing here keeps state: a resumed run regenerates exactly the batches an uninterrupted
run would have seen.
"""

from __future__ import annotations

import functools

import numpy as np

import lengthgen.positional as pe
from lengthgen.config import ExperimentConfig
from lengthgen.tasks import Batch, Task, concat_batches, pad_batch

_TRAIN_STREAM = 0
_EVAL_STREAM = 1


def round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def train_rng(seed: int, step: int) -> np.random.Generator:
  return np.random.default_rng([seed, _TRAIN_STREAM, step])


def eval_rng(seed: int, length: int) -> np.random.Generator:
  return np.random.default_rng([seed, _EVAL_STREAM, length])


@functools.lru_cache(maxsize=256)
def _nominal_size(task: Task, length: int) -> int:
  return task.sample(np.random.default_rng(0), 1, length).tokens.shape[1]


def mixed_length_batch(task: Task, rng: np.random.Generator, batch_size: int, min_length: int,
                       max_length: int, pad_multiple: int = 8) -> Batch:
  """``batch_size`` examples with lengths uniform in [min_length, max_length], right-padded.

  The padded size is the nominal size of the longest length rounded up to ``pad_multiple``
  (larger only if a task's sample is longer), so training compiles once.
  """
  lengths = rng.integers(min_length, max_length + 1, size=batch_size)
  values, counts = np.unique(lengths, return_counts=True)
  parts = [task.sample(rng, int(c), int(v)) for v, c in zip(values, counts)]
  batch = concat_batches(parts)
  # Shuffle so that lengths are not sorted along the batch axis.
  order = rng.permutation(batch_size)
  batch = Batch(batch.tokens[order], batch.targets[order], batch.loss_mask[order])
  size = round_up(max(_nominal_size(task, max_length), batch.tokens.shape[1]), pad_multiple)
  return pad_batch(batch, size)


def model_inputs(batch: Batch, config: ExperimentConfig, vocab, rng: np.random.Generator | None,
                 *, train: bool) -> dict[str, np.ndarray]:
  """The arrays a step consumes: tokens, targets, loss_mask, positions, lengths.

  ``vocab`` is the token strings of the batch's ids (position samplers such as Abacus read
  the digits).
  """
  encoding = pe.get(config.model.positional, **config.model.positional_options)
  sampler, options = pe.resolve_sampler(encoding, config.model.positions,
                                        config.model.positions_options)
  positions = pe.sample_positions(sampler, batch.tokens, rng, train=train, vocab=list(vocab),
                                  **options)
  return {
      "tokens": batch.tokens.astype(np.int32),
      "targets": batch.targets.astype(np.int32),
      "loss_mask": batch.loss_mask.astype(bool),
      "positions": np.asarray(positions, np.int32),
      "lengths": batch.lengths,
  }


def mixture_inputs(setup, parts: list[tuple[int, Batch]], rng: np.random.Generator | None, *,
                   train: bool) -> dict[str, np.ndarray]:
  """``model_inputs`` of task batches ``(k, batch)`` of a ``lengthgen.build.Setup``, stacked
  in order in its vocabulary, with ``task_ids`` [B]."""
  batch = concat_batches([setup.to_mixture(b, k) for k, b in parts])
  inputs = model_inputs(batch, setup.config, setup.vocab, rng, train=train)
  inputs["task_ids"] = np.concatenate([np.full(len(b.tokens), k, np.int32) for k, b in parts])
  return inputs


def training_inputs(setup, step: int, seed: int | None = None) -> dict[str, np.ndarray]:
  """The training batch of ``step``: a function of (seed, step) only (default seed: the
  config's). Each task of the mixture contributes its ``batch_counts`` share."""
  t = setup.config.train
  rng = train_rng(t.seed if seed is None else seed, step)
  parts = [(k, mixed_length_batch(m.task, rng, count, t.min_length, t.max_length))
           for k, (m, count) in enumerate(zip(setup.tasks, setup.batch_counts(t.batch_size)))]
  return mixture_inputs(setup, parts, rng, train=True)

"""The encoder layout shared by the tasks of Deletang et al. 2023.

An encoder task shows the model its input followed by ``output_length`` blank slots and
asks for the answer in the slots (non-causal, non-autoregressive)::

    tokens    1 0 1 1 _ _ _ _
    targets   . . . . 1 1 0 1      (0 = no target at input positions)
    loss_mask F F F F T T T T

Token 0 is padding and 1 is the blank slot ``_`` in every vocabulary; the task's symbols
follow from id 2. Where the reference marks the end of a variable-length answer with a
termination token and pads after it (binary addition/multiplication, stack manipulation),
the loss mask stops at the termination token, as the reference's accuracy mask does;
``supervise_padding=True`` also supervises the padding after it (the reference's loss).
"""

from __future__ import annotations

import numpy as np

from lengthgen.tasks import base

BLANK = "_"
FIRST_SYMBOL = 2   # id of a task's first symbol


def encoder_batch(inputs: np.ndarray, answers: np.ndarray,
                  answer_mask: np.ndarray | None = None) -> base.Batch:
  """Lays out ``inputs`` then one blank slot per answer token, with loss on the slots.

  Args:
    inputs: [B, N] token ids of the input (no padding).
    answers: [B, A] token ids of the answer (no padding).
    answer_mask: [B, A] bool, which slots are supervised; all of them by default.
  """
  b, n = inputs.shape
  a = answers.shape[1]
  blanks = np.ones((b, a), np.int32)
  tokens = np.concatenate([inputs, blanks], axis=1).astype(np.int32)
  targets = np.concatenate([np.zeros((b, n), np.int32), answers], axis=1).astype(np.int32)
  mask = np.ones((b, a), bool) if answer_mask is None else answer_mask.astype(bool)
  loss_mask = np.concatenate([np.zeros((b, n), bool), mask], axis=1)
  return base.Batch(tokens, targets, loss_mask)


class EncoderTask:
  """Shared machinery: vocabulary ``<pad> _ symbols...``, sampling, rendering, verifying.

  Subclasses are frozen dataclasses that define ``name``, ``symbols`` (property or class
  attribute), ``output_length(length)``, ``generate(rng, batch_size, length)`` returning
  (inputs, answers, answer_mask or None) as symbol codes (0 = first symbol), and ``solve``.
  """

  name = "encoder"
  kind = "encoder"
  symbols: tuple = ()

  @property
  def vocab(self) -> list[str]:
    return [base.PAD, BLANK] + list(self.symbols)

  def code(self, symbol: str) -> int:
    """Symbol code (vocabulary id minus ``FIRST_SYMBOL``) of ``symbol``."""
    return list(self.symbols).index(symbol)

  def output_length(self, length: int) -> int:
    return 1

  def generate(self, rng: np.random.Generator, batch_size: int, length: int):
    raise NotImplementedError

  def solve(self, inputs: list[str]) -> list[str]:
    """The supervised answer of one input, derived independently (plain python)."""
    raise NotImplementedError

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    inputs, answers, mask = self.generate(rng, batch_size, int(length))
    return encoder_batch(np.asarray(inputs) + FIRST_SYMBOL, np.asarray(answers) + FIRST_SYMBOL,
                         mask)

  def split(self, tokens: np.ndarray, targets: np.ndarray, loss_mask: np.ndarray):
    """(input symbols, supervised answer symbols) of one row; padding dropped."""
    vocab = self.vocab
    inputs = [vocab[int(t)] for t in tokens if int(t) > 1]
    answer = [vocab[int(t)] for t in targets[loss_mask]]
    return inputs, answer

  def verify(self, tokens: np.ndarray, targets: np.ndarray, loss_mask: np.ndarray) -> bool:
    """True if the row is laid out as input, blanks, and the supervised answer is right."""
    tokens = np.asarray(tokens)
    real = tokens[tokens != base.PAD_ID]
    blank = np.flatnonzero(real == 1)
    if blank.size == 0 or blank[0] + blank.size != real.size:
      return False   # blanks must be one run at the end
    n = int(blank[0])
    if (loss_mask[:n].any() or not loss_mask[n:n + blank.size].any()
        or loss_mask[n + blank.size:].any() or (tokens[:n] <= 1).any()):
      return False
    inputs, answer = self.split(tokens, targets, loss_mask)
    return answer == list(self.solve(inputs))

  def render(self, row: np.ndarray) -> str:
    return base.render_tokens(self.vocab, row)

  def describe(self, batch: base.Batch, i: int = 0) -> str:
    """``input -> answer`` of example ``i`` (supervised answer tokens only)."""
    inputs, answer = self.split(batch.tokens[i], batch.targets[i], batch.loss_mask[i])
    return f"{' '.join(inputs)} -> {' '.join(answer)}"


def random_bits(rng: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
  return rng.integers(0, 2, size=(batch_size, length), dtype=np.int32)


def nonzero_bits(rng: np.random.Generator, widths: np.ndarray, width: int) -> np.ndarray:
  """[B, width] bits, row b uniform over the nonzero numbers below 2**widths[b] (LSB first)."""
  valid = np.arange(width)[None, :] < widths[:, None]
  bits = random_bits(rng, widths.shape[0], width) * valid
  zero = ~bits.any(axis=1)
  while zero.any():  # rejection: each retry succeeds with probability >= 1/2
    redo = random_bits(rng, int(zero.sum()), width) * valid[zero]
    bits[zero] = redo
    zero = ~bits.any(axis=1)
  return bits

"""Abacus embeddings (McLeish et al. 2024): each digit's position within its own number.

    tokens     1 2 3 + 4 5 6 = 5 7 9
    positions  1 2 3 0 1 2 3 0 1 2 3

Digits are vocabulary entries '0'..'9'; every other token gets position 0. During training a
random offset in [0, max_offset) is added to each example's digit positions (the paper's
trick for generalizing to longer numbers); at evaluation there is none. The positions feed a
learned embedding table of ``max_length`` rows (``max_offset`` + the longest number).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import numpy as np

from lengthgen.positional.absolute import LearnedEmbedding
from lengthgen.positional.base import Encoding

DIGITS = tuple(str(i) for i in range(10))


def abacus_positions(tokens_BT: np.ndarray, vocab: list[str]) -> np.ndarray:
  """1-based index of each digit within its run of consecutive digits; 0 elsewhere."""
  is_digit_id = np.asarray([v in DIGITS for v in vocab], dtype=bool)
  digit = is_digit_id[tokens_BT]
  b, t = tokens_BT.shape
  index = np.broadcast_to(np.arange(t), (b, t))
  # The start of the current digit run: the last non-digit index before t, plus one.
  last_non_digit = np.maximum.accumulate(np.where(~digit, index, -1), axis=1)
  return np.where(digit, index - last_non_digit, 0).astype(np.int32)


def abacus_sampler(tokens_BT, rng, *, train: bool, vocab: list[str], max_offset: int = 100):
  """Abacus positions, with a random per-example offset on digits during training."""
  positions = abacus_positions(np.asarray(tokens_BT), vocab)
  if train and max_offset > 0:
    if rng is None:
      raise ValueError("the abacus sampler needs a random generator during training")
    offset = rng.integers(0, max_offset, size=(positions.shape[0], 1))
    positions = np.where(positions > 0, positions + offset, 0).astype(np.int32)
  return positions


@dataclasses.dataclass(frozen=True)
class Abacus(Encoding):
  """Learned embedding of Abacus digit positions (McLeish et al. 2024)."""

  max_length: int = 256
  name = "abacus"
  default_positions = "abacus"

  def embedding(self, width: int) -> nn.Module:
    return LearnedEmbedding(self.max_length, width)

  def position_limit(self) -> int:
    return self.max_length

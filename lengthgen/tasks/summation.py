"""Summation mod 10 (Kazemnejad et al. 2023): the sum of a sequence of digits, modulo 10.

    plain       3 3 1 8 | 5
    scratchpad  3 3 1 8 | 3 6 7 5          (running sum mod 10 after every digit; the last
                                            is the answer)

As in Kazemnejad et al.'s data builder (``make_sum_dataset.py``), the digits are drawn
uniformly from 1..9 and the answer is one digit, the final sum mod 10; ``scratchpad=True``
writes the running sum of every prefix instead (their scratchpad's intermediate variable).
Length is the number of digits.

Kazemnejad et al.'s prompt (``S2SSumDataInstanceProcessor``) reads "Compute: 3 + 3 + 1 + 8 .
[SEP] The answer is 5 .": ``prompt=True`` starts every source with a fixed instruction token
``<sum>`` (their fixed words) and ``plus=True`` puts a ``+`` token between neighbouring digits:

    <sum> 3 + 3 + 1 + 8 | 5
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base
from lengthgen.tasks.sort import interleave

DIGITS = [str(i) for i in range(10)]
PLUS = "+"
PROMPT = "<sum>"


@dataclasses.dataclass(frozen=True)
class Summation:
  scratchpad: bool = False
  prompt: bool = False
  plus: bool = False
  name = "summation"
  kind = "decoder"
  sep_id = 1
  eos_id = 2

  def __post_init__(self):
    base.check_bool_options(self, "prompt", "plus")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD, base.SEP, base.EOS] + DIGITS + ([PLUS] if self.plus else [])
            + ([PROMPT] if self.prompt else []))

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    values = rng.integers(1, 10, size=(batch_size, length), dtype=np.int32)
    running = np.cumsum(values, axis=1) % 10
    answer = running if self.scratchpad else running[:, -1:]
    source = values + 3
    if self.plus:
      source = interleave(source, 3 + len(DIGITS))
    if self.prompt:
      source = np.concatenate(
          [np.full((batch_size, 1), len(self.vocab) - 1, np.int32), source], axis=1)
    return base.decoder_batch(source.astype(np.int32), (answer + 3).astype(np.int32),
                              self.sep_id, self.eos_id)

  def solve(self, source):
    source = list(source)[1:] if self.prompt else list(source)
    if self.plus:
      source = source[::2]
    out, total = [], 0
    for t in source:
      total += int(self.vocab[t])
      out.append(3 + total % 10)
    return out if self.scratchpad else out[-1:]

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

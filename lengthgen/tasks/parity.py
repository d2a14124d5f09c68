"""Parity of a bit string (Kazemnejad et al. 2023), with or without a scratchpad.

    plain       1 0 1 1 | 1
    scratchpad  1 0 1 1 | 1 1 0 1          (running parity of every prefix; the last is the answer)

Length is the number of bits. Without a scratchpad this is the negative control of the
length-generalization literature.

Kazemnejad et al.'s prompt (``S2SParityDataInstanceProcessor``) reads "Is the number of 1's
even in the sequence [ 1, 0, 1, 1 ] ? The answer is No.": ``prompt=True`` starts every source
with a fixed instruction token ``<parity>`` (their fixed words) and ``commas=True`` puts a
``,`` token between neighbouring bits (the answer token is the parity bit, theirs Yes/No):

    <parity> 1 , 0 , 1 , 1 | 1
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base
from lengthgen.tasks.sort import interleave

PROMPT = "<parity>"


@dataclasses.dataclass(frozen=True)
class Parity:
  scratchpad: bool = False
  prompt: bool = False
  commas: bool = False
  name = "parity"
  kind = "decoder"
  sep_id = 1
  eos_id = 2

  def __post_init__(self):
    base.check_bool_options(self, "prompt", "commas")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD, base.SEP, base.EOS, "0", "1"] + ([","] if self.commas else [])
            + ([PROMPT] if self.prompt else []))

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    bits = rng.integers(0, 2, size=(batch_size, length), dtype=np.int32)
    running = np.cumsum(bits, axis=1) % 2
    answer = running if self.scratchpad else running[:, -1:]
    source = bits + 3
    if self.commas:
      source = interleave(source, 5)
    if self.prompt:
      source = np.concatenate(
          [np.full((batch_size, 1), len(self.vocab) - 1, np.int32), source], axis=1)
    return base.decoder_batch(source.astype(np.int32), (answer + 3).astype(np.int32),
                              self.sep_id, self.eos_id)

  def solve(self, source):
    source = list(source)[1:] if self.prompt else list(source)
    if self.commas:
      source = source[::2]
    out, p = [], 0
    for t in source:
      p ^= (t - 3)
      out.append(p + 3)
    return out if self.scratchpad else out[-1:]

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

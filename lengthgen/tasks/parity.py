"""Parity of a bit string (Kazemnejad et al. 2023), with or without a scratchpad.

    plain       1 0 1 1 | 1
    scratchpad  1 0 1 1 | 1 1 0 1          (running parity of every prefix; the last is the answer)

Length is the number of bits. Without a scratchpad this is the negative control of the
length-generalization literature.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base


@dataclasses.dataclass(frozen=True)
class Parity:
  scratchpad: bool = False
  name = "parity"
  kind = "decoder"
  vocab = [base.PAD, base.SEP, base.EOS, "0", "1"]
  sep_id = 1
  eos_id = 2

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    bits = rng.integers(0, 2, size=(batch_size, length), dtype=np.int32)
    running = np.cumsum(bits, axis=1) % 2
    answer = running if self.scratchpad else running[:, -1:]
    return base.decoder_batch(bits + 3, (answer + 3).astype(np.int32), self.sep_id, self.eos_id)

  def solve(self, source):
    out, p = [], 0
    for t in source:
      p ^= (t - 3)
      out.append(p + 3)
    return out if self.scratchpad else out[-1:]

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

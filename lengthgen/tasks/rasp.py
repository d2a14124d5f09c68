"""RASP-L tasks of Zhou et al. 2023 ("What Algorithms can Transformers Learn?").

    count   <s> n3 n7 | n3 n4 n5 n6 n7        (count from a to b; length = b - a + 1)
    mode    a3 a1 a3 a2 | a3                  (most frequent token; ties: the smallest)

For ``count`` the numbers are tokens n0 .. n{max_value}; length is the number of outputs.
For ``mode`` length is the number of source tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base
from lengthgen.tasks.copy import SequenceTask


@dataclasses.dataclass(frozen=True)
class Count:
  max_value: int = 155
  name = "count"
  kind = "decoder"
  sep_id = 1
  eos_id = 2

  @property
  def vocab(self) -> list[str]:
    return [base.PAD, base.SEP, base.EOS, "<s>"] + [f"n{i}" for i in range(self.max_value + 1)]

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length, maximum=self.max_value + 1)
    start = rng.integers(0, self.max_value - length + 2, size=(batch_size, 1))
    answer = start + np.arange(length)[None]
    source = np.concatenate([np.full((batch_size, 1), 3), start + 4, answer[:, -1:] + 4], 1)
    return base.decoder_batch(source.astype(np.int32), (answer + 4).astype(np.int32),
                              self.sep_id, self.eos_id)

  def solve(self, source):
    _, a, b = source
    out, x = [], a
    while x <= b:
      out.append(x)
      x += 1
    return out

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)


@dataclasses.dataclass(frozen=True)
class Mode(SequenceTask):
  alphabet_size: int = 8
  name = "mode"

  def answer(self, source: np.ndarray) -> np.ndarray:
    counts = np.zeros((source.shape[0], self.alphabet_size + 3), dtype=np.int64)
    np.add.at(counts, (np.arange(source.shape[0])[:, None], source), 1)
    return np.argmax(counts, axis=1)[:, None].astype(np.int32)  # argmax: smallest on ties

  def solve(self, source):
    best, best_count = None, -1
    for t in sorted(set(source)):
      c = list(source).count(t)
      if c > best_count:
        best, best_count = t, c
    return [best]

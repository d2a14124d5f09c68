"""Copy: repeat the source after the separator.

    3 1 4 1 | 3 1 4 1

Length is the number of source tokens. Tokens are drawn uniformly (with replacement)
from an alphabet of ``alphabet_size`` symbols ``a0 .. a{k-1}``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base


@dataclasses.dataclass(frozen=True)
class SequenceTask:
  """Shared machinery of tasks whose answer is a function of a random token sequence."""

  alphabet_size: int = 16
  name = "sequence"
  kind = "decoder"   # decoder tasks: causal next-token layout; encoder tasks: "encoder"

  def __post_init__(self):
    if not isinstance(self.alphabet_size, int) or self.alphabet_size < 2:
      raise ValueError(f"task {self.name!r}: alphabet_size must be an integer >= 2, "
                       f"got {self.alphabet_size!r}")

  @property
  def vocab(self) -> list[str]:
    return [base.PAD, base.SEP, base.EOS] + [f"a{i}" for i in range(self.alphabet_size)]

  @property
  def sep_id(self) -> int:
    return 1

  @property
  def eos_id(self) -> int:
    return 2

  def answer(self, source: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    source = rng.integers(3, 3 + self.alphabet_size, size=(batch_size, length), dtype=np.int32)
    return base.decoder_batch(source, self.answer(source), self.sep_id, self.eos_id)

  def render(self, row: np.ndarray) -> str:
    return base.render_tokens(self.vocab, row)


@dataclasses.dataclass(frozen=True)
class Copy(SequenceTask):
  name = "copy"

  def answer(self, source: np.ndarray) -> np.ndarray:
    return source.copy()

"""Sort: write the source tokens in ascending order after the separator.

    a3 a1 a4 a1 | a1 a1 a3 a4
    <sort> a3 , a1 , a4 | a1 , a3 , a4          (prompt=True, commas=True)

Length is the number of source tokens, drawn with replacement from an alphabet of
``alphabet_size`` ordered symbols (the task-hinting setting uses 64).

Kazemnejad et al.'s single-digit sort (``S2SSortDataInstanceProcessor``) reads "Sort the
following list [ M, E, F ]. The sorted list is [ E, F, M ]." over 50 symbols ordered by
their index: ``prompt=True`` starts every source with a fixed instruction token ``<sort>``
(their fixed instruction words) and ``commas=True`` puts a ``,`` token between neighbouring
elements of the source and of the answer, as their lists have.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base
from lengthgen.tasks.copy import SequenceTask

PROMPT = "<sort>"
COMMA = ","


def interleave(values_BN: np.ndarray, token: int) -> np.ndarray:
  """``x0 t x1 t .. x{n-1}``: ``token`` between neighbouring columns, [B, 2N - 1]."""
  b, n = values_BN.shape
  out = np.full((b, 2 * n - 1), token, dtype=values_BN.dtype)
  out[:, ::2] = values_BN
  return out


@dataclasses.dataclass(frozen=True)
class Sort(SequenceTask):
  name = "sort"
  alphabet_size: int = 64
  prompt: bool = False
  commas: bool = False

  def __post_init__(self):
    super().__post_init__()
    base.check_bool_options(self, "prompt", "commas")

  @property
  def vocab(self) -> list[str]:
    return super().vocab + ([COMMA] if self.commas else []) + ([PROMPT] if self.prompt else [])

  @property
  def _comma_id(self) -> int:
    return 3 + self.alphabet_size

  def source(self, rng, batch_size, length):
    source = super().source(rng, batch_size, length)
    if self.commas:
      source = interleave(source, self._comma_id)
    if self.prompt:
      prompt = np.full((batch_size, 1), len(self.vocab) - 1, np.int32)
      source = np.concatenate([prompt, source], axis=1)
    return source

  def answer(self, source: np.ndarray) -> np.ndarray:
    if self.prompt:
      source = source[:, 1:]
    if self.commas:
      return interleave(np.sort(source[:, ::2], axis=1), self._comma_id)
    return np.sort(source, axis=1)

  def solve(self, source):
    source = list(source)[1:] if self.prompt else list(source)
    elements = source[::2] if self.commas else source
    counts = {}
    for t in elements:
      counts[t] = counts.get(t, 0) + 1
    ordered = [t for t in range(3, 3 + self.alphabet_size) for _ in range(counts.get(t, 0))]
    if not self.commas:
      return ordered
    out = []
    for i, t in enumerate(ordered):
      out += ([self._comma_id] if i else []) + [t]
    return out

"""Sort: write the source tokens in ascending order after the separator.

    a3 a1 a4 a1 | a1 a1 a3 a4

Length is the number of source tokens, drawn with replacement from an alphabet of
``alphabet_size`` ordered symbols (the task-hinting setting uses 64).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.copy import SequenceTask


@dataclasses.dataclass(frozen=True)
class Sort(SequenceTask):
  name = "sort"
  alphabet_size: int = 64

  def answer(self, source: np.ndarray) -> np.ndarray:
    return np.sort(source, axis=1)

  def solve(self, source):
    counts = {}
    for t in source:
      counts[t] = counts.get(t, 0) + 1
    return [t for t in range(3, 3 + self.alphabet_size) for _ in range(counts.get(t, 0))]

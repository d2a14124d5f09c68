"""Sort: write the source tokens in ascending order after the separator.

    3 1 4 1 | 1 1 3 4

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

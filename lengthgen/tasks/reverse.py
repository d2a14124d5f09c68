"""Reverse: write the source backwards after the separator.

    3 1 4 1 | 1 4 1 3

Length is the number of source tokens; alphabet as in ``copy``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.copy import SequenceTask


@dataclasses.dataclass(frozen=True)
class Reverse(SequenceTask):
  name = "reverse"

  def answer(self, source: np.ndarray) -> np.ndarray:
    return source[:, ::-1].copy()

"""Reverse: write the source backwards after the separator (Kazemnejad et al. 2023).

    reverse       a3 a1 a4 a2 | a2 a4 a1 a3
    twice         a3 a1 a4 | a4 a1 a3 a4 a1 a3
    reverse_copy  a3 a1 a4 | a4 a1 a3 a3 a1 a4

Length is the number of source tokens; alphabet as in ``copy``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.copy import SequenceTask

VARIANTS = ("reverse", "twice", "reverse_copy")


@dataclasses.dataclass(frozen=True)
class Reverse(SequenceTask):
  variant: str = "reverse"
  name = "reverse"

  def __post_init__(self):
    super().__post_init__()
    if self.variant not in VARIANTS:
      raise ValueError(f"task 'reverse': unknown variant {self.variant!r}; valid variants: "
                       f"{', '.join(VARIANTS)}")

  def answer(self, source: np.ndarray) -> np.ndarray:
    rev = source[:, ::-1]
    if self.variant == "twice":
      return np.concatenate([rev, rev], axis=1)
    if self.variant == "reverse_copy":
      return np.concatenate([rev, source], axis=1)
    return rev.copy()

  def solve(self, source):
    rev = [source[len(source) - 1 - i] for i in range(len(source))]
    return rev + (rev if self.variant == "twice" else list(source)
                  if self.variant == "reverse_copy" else [])

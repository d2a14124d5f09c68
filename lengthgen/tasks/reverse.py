"""Reverse: write the source backwards after the separator (Kazemnejad et al. 2023).

    reverse       a3 a1 a4 a2 | a2 a4 a1 a3
    twice         a3 a1 a4 | a4 a1 a3 a4 a1 a3
    reverse_copy  a3 a1 a4 | a4 a1 a3 a3 a1 a4

Length is the number of source tokens; alphabet as in ``copy``.

``prompt=True`` starts every source with a fixed instruction token ``<reverse>``, as the
authors' sequences start with "Reverse:" (Kazemnejad et al.'s ``S2SReverseDataInstanceProcessor``:
"Reverse: a b c [SEP] c b a"; their alphabet is 100 symbols, training lengths 2-20):

    <reverse> a3 a1 a4 | a4 a1 a3
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base
from lengthgen.tasks.copy import SequenceTask

VARIANTS = ("reverse", "twice", "reverse_copy")
PROMPT = "<reverse>"


@dataclasses.dataclass(frozen=True)
class Reverse(SequenceTask):
  variant: str = "reverse"
  prompt: bool = False
  name = "reverse"

  def __post_init__(self):
    super().__post_init__()
    if self.variant not in VARIANTS:
      raise ValueError(f"task 'reverse': unknown variant {self.variant!r}; valid variants: "
                       f"{', '.join(VARIANTS)}")
    base.check_bool_options(self, "prompt")

  @property
  def vocab(self) -> list[str]:
    return super().vocab + ([PROMPT] if self.prompt else [])

  def source(self, rng, batch_size, length):
    source = super().source(rng, batch_size, length)
    if self.prompt:
      prompt = np.full((batch_size, 1), len(self.vocab) - 1, np.int32)
      source = np.concatenate([prompt, source], axis=1)
    return source

  def answer(self, source: np.ndarray) -> np.ndarray:
    if self.prompt:
      source = source[:, 1:]
    rev = source[:, ::-1]
    if self.variant == "twice":
      return np.concatenate([rev, rev], axis=1)
    if self.variant == "reverse_copy":
      return np.concatenate([rev, source], axis=1)
    return rev.copy()

  def solve(self, source):
    if self.prompt:
      source = source[1:]
    rev = [source[len(source) - 1 - i] for i in range(len(source))]
    return rev + (rev if self.variant == "twice" else list(source)
                  if self.variant == "reverse_copy" else [])

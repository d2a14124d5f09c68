"""String-transduction tasks of Deletang et al. 2023 (binary alphabet by default).

    reverse_string            1 0 1 1 -> 1 1 0 1                  (output length n)
    duplicate_string          1 0 1 -> 1 0 1 1 0 1                (output length 2n)
    odds_first                0 0 1 1 0 1 0 1 -> 0 1 1 1 0 1 0 0  (s2 s4 s6 ... s1 s3 ...)
    odds_first order="paper"  0 0 1 1 0 1 0 1 -> 0 1 0 0 0 1 1 1  (s1 s3 s5 ... s2 s4 ...)
    bucket_sort               1 0 2 0 4 1 1 2 -> 0 0 1 1 1 2 2 4  (alphabet of 5)
    missing_duplicate_string  0 1 1 0 0 ? 1 0 -> 1                (the "?" of the copy)

Length is the number of input tokens. ``odds_first`` follows the reference code by default
(google-deepmind/neural_networks_chomsky_hierarchy ``tasks/cs/odds_first.py``,
``OddsFirst.sample_batch``: the 0-indexed odd positions first, ``1 0 1 0 0 -> 0 0 1 1 0``), so
its numbers compare with the published ones; ``order="paper"`` is the definition of the
paper's text and of the reference's docstring (1-indexed odd positions first,
``1 0 1 0 0 -> 1 1 0 0 0``). ``missing_duplicate_string`` shows a string of n // 2 bits
twice with one bit replaced by ``?``, padded with ``.`` when n is odd; at length 1 the input
and answer are both ``1`` (the reference's convention).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.chomsky.common import EncoderTask, random_bits


@dataclasses.dataclass(frozen=True)
class _AlphabetTask(EncoderTask):
  """A uniform random string over ``vocab_size`` symbols "0" .. "k-1"."""

  vocab_size: int = 2

  def __post_init__(self):
    if not isinstance(self.vocab_size, int) or not 2 <= self.vocab_size <= 64:
      raise ValueError(f"task {self.name!r}: vocab_size must be an integer in [2, 64], "
                       f"got {self.vocab_size!r}")

  @property
  def symbols(self):
    return tuple(str(i) for i in range(self.vocab_size))

  def output_length(self, length):
    return length

  def generate(self, rng, batch_size, length):
    s = rng.integers(0, self.vocab_size, size=(batch_size, length))
    return s, self.transform(s), None

  def transform(self, s: np.ndarray) -> np.ndarray:
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class ReverseString(_AlphabetTask):
  name = "reverse_string"

  def transform(self, s):
    return s[:, ::-1]

  def solve(self, inputs):
    return [inputs[len(inputs) - 1 - i] for i in range(len(inputs))]


@dataclasses.dataclass(frozen=True)
class DuplicateString(_AlphabetTask):
  name = "duplicate_string"

  def output_length(self, length):
    return 2 * length

  def transform(self, s):
    return np.concatenate([s, s], axis=1)

  def solve(self, inputs):
    return inputs + inputs


ODDS_FIRST_ORDERS = ("upstream", "paper")


@dataclasses.dataclass(frozen=True)
class OddsFirst(_AlphabetTask):
  """``order``: "upstream" (the reference code: s2 s4 ... then s1 s3 ..., 1-indexed) or
  "paper" (the paper's text: s1 s3 ... then s2 s4 ...)."""

  order: str = "upstream"
  name = "odds_first"

  def __post_init__(self):
    super().__post_init__()
    if self.order not in ODDS_FIRST_ORDERS:
      raise ValueError(f"task {self.name!r}: unknown order {self.order!r}; valid orders: "
                       f"{', '.join(ODDS_FIRST_ORDERS)}")

  def transform(self, s):
    odd, even = s[:, 0::2], s[:, 1::2]  # 1-indexed odd and even positions
    return np.concatenate([even, odd] if self.order == "upstream" else [odd, even], axis=1)

  def solve(self, inputs):
    odd = [t for i, t in enumerate(inputs, start=1) if i % 2 == 1]
    even = [t for i, t in enumerate(inputs, start=1) if i % 2 == 0]
    return even + odd if self.order == "upstream" else odd + even


@dataclasses.dataclass(frozen=True)
class BucketSort(_AlphabetTask):
  vocab_size: int = 5
  name = "bucket_sort"

  def transform(self, s):
    return np.sort(s, axis=1)

  def solve(self, inputs):
    counts = {t: inputs.count(t) for t in self.symbols}
    return [t for t in self.symbols for _ in range(counts[t])]


@dataclasses.dataclass(frozen=True)
class MissingDuplicateString(EncoderTask):
  name = "missing_duplicate_string"
  symbols = ("0", "1", "?", ".")

  def generate(self, rng, batch_size, length):
    if length == 1:
      ones = np.ones((batch_size, 1), np.int64)
      return ones, ones, None
    half = length // 2
    s = random_bits(rng, batch_size, half)
    doubled = np.concatenate([s, s], axis=1)
    where = rng.integers(0, 2 * half, size=batch_size)
    rows = np.arange(batch_size)
    answer = doubled[rows, where].copy()
    doubled[rows, where] = 2
    pad = np.full((batch_size, length % 2), 3)
    return np.concatenate([doubled, pad], axis=1), answer[:, None], None

  def solve(self, inputs):
    if inputs == ["1"]:
      return ["1"]
    half = len(inputs) // 2
    first, second = inputs[:half], inputs[half:2 * half]
    hole = (first + second).index("?")
    other = second if hole < half else first
    return [other[hole % half]]

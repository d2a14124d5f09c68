"""Hint tasks for sorting (Awasthi & Gupta 2023, "Improving Length-Generalization in
Transformers via Task Hinting"), trained alongside a main task: a task mixture of
``lengthgen.build``, trained by ``lengthgen.train``.

Every hint sees a source sequence drawn like ``Sort``'s (alphabet ``a0 .. a{k-1}``, with
replacement); the query hints append ``? x`` where ``x`` is an element of the sequence:

    successor    a3 a1 a4 a1 ? a1 | a3          smallest element > x ("none" if x is the max)
    predecessor  a3 a1 a4 a1 ? a3 | a1          largest element < x ("none" if x is the min)
    count        a3 a1 a4 a1 ? a3 | d0 d2       how many elements are < x (decimal, as many
                                                digits as the length has, leading zeros)
    count_equal  a3 a1 a4 a1 ? a1 | d0 d2       how many times x occurs
    fill         a3 a1 a4 a1 | _ _ _ _          one fill symbol per source element
    successor_each
                 a3 a1 a4 a1 | a4 a3 none a3    every element's successor, in source order
    identity_successor
                 a3 a1 | a3 none a1 a3          every element, then its successor: the answer
                                                supervises 2n positions, and each successor
                                                is predicted right after its element, as sort
                                                predicts each output after the previous one
    successor_stable
                 a3 a1 a4 a1 | a4 a1 none a3    every element's successor in the stable sorted
                                                order: x again where a copy of x comes later in
                                                the source, else the smallest element > x

The query hints supervise one answer token per example; ``successor_each``,
``successor_stable`` and ``identity_successor`` supervise one or two per source element (Awasthi & Gupta decompose
sorting into copy, min and identity+successor steps; which exact layout their hint used is
not in the material available here, so both per-element layouts are offered beside the query
form).

The vocabulary starts with Sort's (pad, separator, eos, a0..) so token ids of the shared
symbols agree with sort, copy and reverse; ``lengthgen.build`` makes the union vocabulary by
name, so these hints also work next to other tasks over ``a{i}`` symbols. Generation is vectorized
(``answer``); ``solve`` recomputes each answer from one source in plain Python for tests.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base

QUERY = "?"
NONE = "none"
FILL = "_"
DIGITS = [f"d{i}" for i in range(10)]


def smallest_above(seq_BN: np.ndarray, x_BK: np.ndarray, none: int) -> np.ndarray:
  """``out[b, k]``: the smallest ``seq[b, j] > x[b, k]``, or ``none``; [B, K]."""
  big = np.iinfo(np.int32).max
  above = np.where(seq_BN[:, None, :] > x_BK[:, :, None], seq_BN[:, None, :], big)
  best = above.min(axis=2)
  return np.where(best == big, none, best)


def _smallest_above_list(seq: list[int], x: int, none: int) -> int:
  return min((t for t in seq if t > x), default=none)


@dataclasses.dataclass(frozen=True)
class HintTask:
  """Shared layout: ``source [? x] | answer <eos>`` over sort's alphabet."""

  alphabet_size: int = 64
  name = "hint"
  kind = "decoder"
  has_query = True

  def __post_init__(self):
    if not isinstance(self.alphabet_size, int) or self.alphabet_size < 2:
      raise ValueError(f"task {self.name!r}: alphabet_size must be an integer >= 2, "
                       f"got {self.alphabet_size!r}")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD, base.SEP, base.EOS] + [f"a{i}" for i in range(self.alphabet_size)]
            + [QUERY, NONE, FILL] + DIGITS)

  def token(self, symbol: str) -> int:
    return self.vocab.index(symbol)

  sep_id = 1
  eos_id = 2

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    seq = rng.integers(3, 3 + self.alphabet_size, size=(batch_size, length), dtype=np.int32)
    if self.has_query:
      pick = rng.integers(0, length, size=(batch_size, 1))
      query = np.take_along_axis(seq, pick, axis=1)
      marker = np.full((batch_size, 1), self.token(QUERY), np.int32)
      source = np.concatenate([seq, marker, query], axis=1)
      answer = self.answer(seq, query[:, 0])
    else:
      source, answer = seq, self.answer(seq, None)
    return base.decoder_batch(source, answer.astype(np.int32), self.sep_id, self.eos_id)

  def split(self, source: list[int]) -> tuple[list[int], int | None]:
    if not self.has_query:
      return list(source), None
    return list(source[:-2]), source[-1]

  def verify(self, row: np.ndarray) -> bool:
    """True if the answer after the separator is ``solve(source)``."""
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row: np.ndarray) -> str:
    return base.render_tokens(self.vocab, row)


@dataclasses.dataclass(frozen=True)
class Successor(HintTask):
  """The smallest element strictly greater than the query, or ``none``."""

  name = "successor"

  def answer(self, seq, query):
    return smallest_above(seq, query[:, None], self.token(NONE))

  def solve(self, source):
    seq, x = self.split(source)
    return [_smallest_above_list(seq, x, self.token(NONE))]


@dataclasses.dataclass(frozen=True)
class Predecessor(HintTask):
  """The largest element strictly smaller than the query, or ``none``."""

  name = "predecessor"

  def answer(self, seq, query):
    smaller = np.where(seq < query[:, None], seq, -1)
    best = smaller.max(axis=1)
    return np.where(best < 0, self.token(NONE), best)[:, None]

  def solve(self, source):
    seq, x = self.split(source)
    below = sorted(t for t in seq if t < x)
    return [below[-1] if below else self.token(NONE)]


@dataclasses.dataclass(frozen=True)
class CountSmaller(HintTask):
  """How many elements are strictly smaller than the query, in zero-padded decimal."""

  name = "count_smaller"

  @staticmethod
  def counts(seq, query):
    return seq < query

  def answer(self, seq, query):
    count = self.counts(seq, query[:, None]).sum(axis=1)
    width = len(str(seq.shape[1]))
    powers = 10 ** np.arange(width - 1, -1, -1)
    return self.token("d0") + (count[:, None] // powers[None]) % 10

  def solve(self, source):
    seq, x = self.split(source)
    text = str(sum(1 for t in seq if self.counts(t, x))).zfill(len(str(len(seq))))
    return [self.token(f"d{c}") for c in text]


@dataclasses.dataclass(frozen=True)
class CountEqual(CountSmaller):
  """How many times the query occurs in the sequence (its multiplicity), zero-padded decimal:
  what sorting with repetitions must track to write each value the right number of times."""

  name = "count_equal"

  @staticmethod
  def counts(seq, query):
    return seq == query


@dataclasses.dataclass(frozen=True)
class Fill(HintTask):
  """One fill symbol per source element: the answer has the sorted output's length."""

  name = "fill"
  has_query = False

  def answer(self, seq, query):
    del query
    return np.full(seq.shape, self.token(FILL), np.int32)

  def solve(self, source):
    return [self.token(FILL)] * len(source)


@dataclasses.dataclass(frozen=True)
class SuccessorEach(HintTask):
  """Every source element's successor (smallest element > it, or ``none``), in source order."""

  name = "successor_each"
  has_query = False

  def answer(self, seq, query):
    del query
    return smallest_above(seq, seq, self.token(NONE))

  def solve(self, source):
    return [_smallest_above_list(source, x, self.token(NONE)) for x in source]


@dataclasses.dataclass(frozen=True)
class IdentitySuccessor(HintTask):
  """Every source element followed by its successor: ``x1 s(x1) x2 s(x2) ...``."""

  name = "identity_successor"
  has_query = False

  def answer(self, seq, query):
    del query
    out = np.empty((seq.shape[0], 2 * seq.shape[1]), seq.dtype)
    out[:, ::2] = seq
    out[:, 1::2] = smallest_above(seq, seq, self.token(NONE))
    return out

  def solve(self, source):
    source = list(source)
    out = []
    for x in source:
      out += [x, _smallest_above_list(source, x, self.token(NONE))]
    return out


@dataclasses.dataclass(frozen=True)
class SuccessorStable(HintTask):
  """Every source element's successor in the stable sorted order (equal values in source
  order), in source order: ``x`` itself if a copy of ``x`` occurs later in the source, else the
  smallest element > ``x``, else ``none``. Unlike ``successor_each`` it carries the
  multiplicities: following it from the first minimum visits every element once, in sorted
  order, so sort's "one more copy or the next value" decision is one local step of it."""

  name = "successor_stable"
  has_query = False

  def answer(self, seq, query):
    del query
    n = seq.shape[1]
    later = np.triu(np.ones((n, n), bool), k=1)  # later[i, j]: j comes after i
    copy_later = ((seq[:, :, None] == seq[:, None, :]) & later[None]).any(axis=2)
    return np.where(copy_later, seq, smallest_above(seq, seq, self.token(NONE)))

  def solve(self, source):
    source = list(source)
    return [x if x in source[i + 1:] else _smallest_above_list(source, x, self.token(NONE))
            for i, x in enumerate(source)]


HINT_TASKS = {
    "successor": Successor,
    "predecessor": Predecessor,
    "count_smaller": CountSmaller,
    "count_equal": CountEqual,
    "fill": Fill,
    "successor_each": SuccessorEach,
    "identity_successor": IdentitySuccessor,
    "successor_stable": SuccessorStable,
}

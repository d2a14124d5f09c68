"""Addition of two n-digit numbers (Kazemnejad et al. 2023; Zhou et al. 2023; McLeish et al. 2024).

    forward              3 5 7 + 4 6 8 = 0 8 2 5
    reversed             7 5 3 + 8 6 4 = 5 2 8 0          (least significant digit first)
    index_hints          i2 3 i1 5 i0 7 + i2 4 i1 6 i0 8 = i3 0 i2 8 i1 2 i0 5
    scratchpad           3 5 7 + 4 6 8 = 7 8 5 c1 5 6 2 c1 3 4 8 c0 ; 0 8 2 5

``operands`` chooses the numbers. ``padded`` (the default): both operands have exactly n
digits, leading zeros allowed, and the answer is zero-padded to n + 1 digits. ``natural``:
both are n-digit numbers (a leading digit of 1-9) and the answer is the sum's own digits (n
or n + 1). ``bucket`` (McLeish et al.'s training data, their "bucket method"): one operand
has n digits and the other a uniform 1..n, which one at random, answer as ``natural``; train
with ``bucket`` and evaluate with ``natural`` (``config.eval.task_options``) to score equal
lengths as the paper's diagonal. Length is always the longer operand's digits; sequences of
``natural`` and ``bucket`` are right-padded to the width of ``padded`` at that length.
Digits are the single-character tokens '0'..'9', so Abacus positions apply.
With ``index_hints`` (Zhou et al. 2023) every digit is preceded by a token naming its place
value, up to ``max_digits``. With ``scratchpad`` (Kazemnejad et al.'s per-digit steps) the
answer first writes one step per digit position, least significant first: the two operand
digits, the sum digit and the carry out (``c0``/``c1``), then ``;`` and the sum as configured
(the verifier checks the steps and the sum).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base

DIGITS = [str(i) for i in range(10)]
OPERANDS = ("padded", "natural", "bucket")


@dataclasses.dataclass(frozen=True)
class Addition:
  reversed: bool = False
  index_hints: bool = False
  scratchpad: bool = False
  max_digits: int = 128
  operands: str = "padded"
  name = "addition"
  kind = "decoder"
  eos_id = 2

  def __post_init__(self):
    base.check_bool_options(self, "reversed", "index_hints", "scratchpad")
    if self.operands not in OPERANDS:
      raise ValueError(f"addition: unknown operands {self.operands!r}; valid values: "
                       f"{', '.join(OPERANDS)}")
    if self.scratchpad and self.operands != "padded":
      raise ValueError("addition: the scratchpad needs operands='padded' (one step per digit "
                       f"of two equal-length operands), got operands={self.operands!r}")

  @property
  def vocab(self) -> list[str]:
    hints = [f"i{i}" for i in range(self.max_digits + 1)] if self.index_hints else []
    scratch = ["c0", "c1", ";"] if self.scratchpad else []
    return [base.PAD, "=", base.EOS, "+"] + DIGITS + hints + scratch

  @property
  def _scratch_id(self) -> int:
    """Id of ``c0`` (``c1`` and ``;`` follow)."""
    return 14 + (self.max_digits + 1 if self.index_hints else 0)

  @property
  def sep_id(self) -> int:
    return 1

  def _digits(self, numbers_BN: np.ndarray) -> np.ndarray:
    """Digit ids [B, N] (most significant first), reversed and hinted as configured."""
    ids = numbers_BN + 4
    n = ids.shape[1]
    if self.reversed:
      ids = ids[:, ::-1]
    if not self.index_hints:
      return ids
    place = np.arange(n - 1, -1, -1)
    if self.reversed:
      place = place[::-1]
    hints = np.broadcast_to(place + 14, ids.shape)
    return np.stack([hints, ids], axis=-1).reshape(ids.shape[0], 2 * n)

  def _number(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """One n-digit number [1, n], most significant first, leading digit 1-9."""
    digits = rng.integers(0, 10, size=(1, n))
    digits[0, 0] = rng.integers(1, 10)
    return digits

  def _sample_natural(self, rng: np.random.Generator, batch_size: int,
                      length: int) -> base.Batch:
    rows = []
    for _ in range(batch_size):
      sizes = [length, length]
      if self.operands == "bucket":
        sizes[int(rng.integers(2))] = int(rng.integers(1, length + 1))
      a, b = self._number(rng, sizes[0]), self._number(rng, sizes[1])
      value = int("".join(map(str, a[0]))) + int("".join(map(str, b[0])))
      total = np.asarray([[int(c) for c in str(value)]])
      source = np.concatenate([self._digits(a), [[3]], self._digits(b)], axis=1)
      rows.append(base.decoder_batch(source.astype(np.int32),
                                     self._digits(total).astype(np.int32),
                                     self.sep_id, self.eos_id))
    per_digit = 2 if self.index_hints else 1
    width = per_digit * (3 * length + 1) + 2  # source, separator, answer of n + 1 digits
    return base.pad_batch(base.concat_batches(rows), width)

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length, maximum=self.max_digits)
    if self.operands != "padded":
      return self._sample_natural(rng, batch_size, length)
    a = rng.integers(0, 10, size=(batch_size, length))
    b = rng.integers(0, 10, size=(batch_size, length))
    total = np.zeros((batch_size, length + 1), dtype=np.int64)
    carries = np.zeros((batch_size, length + 1), dtype=np.int64)   # carry out of digit i
    carry = np.zeros(batch_size, dtype=np.int64)
    for i in range(length - 1, -1, -1):  # vectorized over the batch, one pass over digits
      s = a[:, i] + b[:, i] + carry
      total[:, i + 1], carry = s % 10, s // 10
      carries[:, i + 1] = carry
    total[:, 0] = carry
    plus = np.full((batch_size, 1), 3)
    source = np.concatenate([self._digits(a), plus, self._digits(b)], axis=1)
    answer = self._digits(total)
    if self.scratchpad:  # steps least significant first: a_i b_i s_i c_i
      steps = np.stack([a + 4, b + 4, total[:, 1:] + 4, carries[:, 1:] + self._scratch_id],
                       axis=-1)[:, ::-1].reshape(batch_size, 4 * length)
      semi = np.full((batch_size, 1), self._scratch_id + 2)
      answer = np.concatenate([steps, semi, answer], axis=1)
    return base.decoder_batch(source.astype(np.int32), answer.astype(np.int32),
                              self.sep_id, self.eos_id)

  def solve(self, source):
    tokens = [t for t in source if not (self.index_hints and 14 <= t < self._scratch_id)]
    cut = tokens.index(3)
    a = [t - 4 for t in tokens[:cut]]
    b = [t - 4 for t in tokens[cut + 1:]]
    if self.reversed:
      a, b = a[::-1], b[::-1]
    value = int("".join(map(str, a))) + int("".join(map(str, b)))
    width = len(a) + 1 if self.operands == "padded" else 0
    digits = [int(c) for c in str(value).zfill(width)]
    answer = list(self._digits(np.asarray([digits]))[0])
    if not self.scratchpad:
      return answer
    steps, carry = [], 0
    for x, y in zip(reversed(a), reversed(b)):  # schoolbook addition, least significant first
      digit, carry = (x + y + carry) % 10, (x + y + carry) // 10
      steps += [x + 4, y + 4, digit + 4, self._scratch_id + carry]
    return steps + [self._scratch_id + 2] + answer

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

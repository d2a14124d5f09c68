"""Binary arithmetic tasks of Deletang et al. 2023 (numbers least significant bit first,
except ``compute_sqrt`` which is most significant bit first, as in the reference).

    binary_addition        0 0 1 + 0 1 1 0 1 -> 0 1 0 1 1 $        (4 + 22 = 26)
    binary_multiplication  0 0 1 * 0 1 1 0 1 -> 0 0 0 1 1 0 1 $    (4 * 22 = 88)
    compute_sqrt           1 0 0 1 0 1 -> 1 1 0                     (floor(sqrt(37)) = 6)

Length n is the number of input tokens. For n >= 3 the first operand has k digits
(k uniform in 1 .. n-2) and the second n-1-k; each operand is uniform among the nonzero
numbers with that many digits (leading zeros allowed). The answer slots (n + 1 for
addition, n for multiplication) hold the result without leading zeros, the end marker
``$``, then ``0`` padding (supervised only with ``supervise_padding=True``). For n <= 2
the input is one number below 2**n - 1 without operator; addition answers that number,
multiplication the reference's placeholder (n - 1 zeros). ``compute_sqrt`` draws a
nonzero n-digit number and answers its integer square root in ceil(n/2) digits.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lengthgen.tasks.chomsky.common import EncoderTask, nonzero_bits, random_bits
from lengthgen.tasks.chomsky.stack import end_masked

OP, END = 2, 3          # symbol codes; 0 and 1 are the bits
_EXACT_BITS = 62        # below this many bits, int64 arithmetic is exact


def to_int(bits: np.ndarray) -> np.ndarray:
  """[B, n] LSB-first bits (n <= 62) -> int64 values."""
  return (bits.astype(np.int64) << np.arange(bits.shape[1], dtype=np.int64)).sum(axis=1)


def to_bits(values: np.ndarray, width: int) -> np.ndarray:
  """int64 values -> [B, width] LSB-first bits."""
  return (values[:, None] >> np.arange(width, dtype=np.int64)) & 1


def bigint(bits: np.ndarray) -> int:
  return int.from_bytes(np.packbits(bits.astype(np.uint8), bitorder="little").tobytes(),
                        "little")


def bigint_bits(value: int, width: int) -> np.ndarray:
  raw = np.frombuffer(value.to_bytes(-(-width // 8) + 1, "little"), np.uint8)
  return np.unpackbits(raw, bitorder="little")[:width].astype(np.int64)


@dataclasses.dataclass(frozen=True)
class _BinaryOperation(EncoderTask):
  supervise_padding: bool = False
  operator = "+"

  @property
  def symbols(self):
    return ("0", "1", self.operator, "$")

  def combine(self, a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """LSB-first bits [B, width] of a (op) b, from LSB-first operands [B, width]."""
    raise NotImplementedError

  def small(self, n: np.ndarray, length: int) -> np.ndarray:
    raise NotImplementedError

  def generate(self, rng, batch_size, length):
    width = self.output_length(length)
    if length <= 2:
      numbers = rng.integers(0, 2**length - 1, size=batch_size)
      codes, result = to_bits(numbers, length), self.small(numbers, length)
    else:
      k = rng.integers(1, length - 1, size=batch_size)
      a = nonzero_bits(rng, k, length)
      b = nonzero_bits(rng, length - 1 - k, length)
      j = np.arange(length)[None, :]
      b_shifted = np.take_along_axis(b, np.clip(j - k[:, None] - 1, 0, length - 1), 1)
      codes = np.where(j < k[:, None], a, np.where(j == k[:, None], OP, b_shifted))
      result = self.combine(a, b, width)
    # Result digits up to the highest 1 (at least one digit), then $, then 0s.
    ones = result.astype(bool)
    digits = np.where(ones.any(1), width - np.argmax(ones[:, ::-1], axis=1), 1)
    if length <= 2 and self.operator == "*":
      digits = np.full(batch_size, length - 1)
    slots = np.arange(width)[None, :]
    answers = np.where(slots < digits[:, None], result, np.where(slots == digits[:, None], END, 0))
    return codes, answers, end_masked(answers, digits, self.supervise_padding)

  def finish(self, value_bits: str, slots: int) -> list[str]:
    answer = list(value_bits) + ["$"]
    if self.supervise_padding:
      answer += ["0"] * (slots - len(answer))
    return answer


@dataclasses.dataclass(frozen=True)
class BinaryAddition(_BinaryOperation):
  name = "binary_addition"
  operator = "+"

  def output_length(self, length):
    return length + 1

  def small(self, n, length):
    return to_bits(n, length + 1)

  def combine(self, a, b, width):
    out = np.zeros((a.shape[0], width), np.int64)
    carry = np.zeros(a.shape[0], np.int64)
    for i in range(a.shape[1]):       # ripple-carry, vectorized over the batch
      s = a[:, i] + b[:, i] + carry
      out[:, i], carry = s & 1, s >> 1
    out[:, a.shape[1]] = carry
    return out

  def solve(self, inputs):
    lsb_first = lambda bits: int("".join(reversed(bits)), 2)
    text = "".join(inputs)
    value = sum(lsb_first(part) for part in text.split("+"))
    return self.finish(format(value, "b")[::-1], len(inputs) + 1)


@dataclasses.dataclass(frozen=True)
class BinaryMultiplication(_BinaryOperation):
  name = "binary_multiplication"
  operator = "*"

  def output_length(self, length):
    return length

  def small(self, n, length):
    return np.zeros((n.shape[0], length), np.int64)

  def combine(self, a, b, width):
    if a.shape[1] <= _EXACT_BITS:   # product < 2**(n-1)
      return to_bits(to_int(a) * to_int(b), width)
    return np.stack([bigint_bits(bigint(x) * bigint(y), width) for x, y in zip(a, b)])

  def solve(self, inputs):
    if "*" not in inputs:
      return self.finish("0" * (len(inputs) - 1), len(inputs))
    left, right = "".join(inputs).split("*")
    value = int(left[::-1], 2) * int(right[::-1], 2)
    return self.finish(format(value, "b")[::-1], len(inputs))


@dataclasses.dataclass(frozen=True)
class ComputeSqrt(EncoderTask):
  name = "compute_sqrt"
  symbols = ("0", "1")

  def output_length(self, length):
    return -(-length // 2)

  def generate(self, rng, batch_size, length):
    bits = nonzero_bits(rng, np.full(batch_size, length), length)   # LSB first
    width = self.output_length(length)
    if length <= _EXACT_BITS:
      n = to_int(bits)
      root = np.floor(np.sqrt(n.astype(np.float64))).astype(np.int64)
      for _ in range(2):  # float rounding is off by at most one either way
        root = np.where(root * root > n, root - 1, root)
        root = np.where((root + 1) * (root + 1) <= n, root + 1, root)
      root_bits = to_bits(root, width)
    else:
      root_bits = np.stack([bigint_bits(math.isqrt(bigint(row)), width) for row in bits])
    return bits[:, ::-1], root_bits[:, ::-1], None

  def solve(self, inputs):
    n = int("".join(inputs), 2)
    root, step = 0, 1 << (len(inputs) // 2 + 1)
    while step:                        # binary search on the root's bits
      if (root + step) ** 2 <= n:
        root += step
      step >>= 1
    return list(format(root, "b").zfill(self.output_length(len(inputs))))

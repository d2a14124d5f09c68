"""Regular tasks of Deletang et al. 2023: one output slot (a class).

    even_pairs          0 0 1 1 1 0 -> 0      (one "01" and one "10": even number of changes)
    parity_check        1 0 1 0 1 0 0 -> 1    (three 1s)
    cycle_navigation    +1 -1 0 -1 -1 -> 3    (walk on a 5-cycle from 0: -2 mod 5)
    modular_arithmetic  0 * 1 + 4 * 3 - 2 -> 0   (usual precedence, mod 5)

Length is the number of input tokens. ``modular_arithmetic`` needs an odd length: as in
the reference, an even length is lowered by one (length 2 gives 1 token).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.chomsky.common import EncoderTask, random_bits


@dataclasses.dataclass(frozen=True)
class ParityCheck(EncoderTask):
  """Is the number of 1s odd? Binary input, class 0 (even) or 1 (odd)."""

  name = "parity_check"
  symbols = ("0", "1")

  def generate(self, rng, batch_size, length):
    bits = random_bits(rng, batch_size, length)
    return bits, (bits.sum(axis=1) % 2)[:, None], None

  def solve(self, inputs):
    return [str(inputs.count("1") % 2)]


@dataclasses.dataclass(frozen=True)
class EvenPairs(EncoderTask):
  """Is the number of "01" and "10" pairs odd? (Equivalently: first != last symbol.)"""

  name = "even_pairs"
  symbols = ("0", "1")

  def generate(self, rng, batch_size, length):
    bits = random_bits(rng, batch_size, length)
    changes = (bits[:, 1:] != bits[:, :-1]).sum(axis=1)
    return bits, (changes % 2)[:, None], None

  def solve(self, inputs):
    s = "".join(inputs)
    return [str((s.count("01") + s.count("10")) % 2)]   # str.count: no overlaps within a kind


@dataclasses.dataclass(frozen=True)
class CycleNavigation(EncoderTask):
  """Final position on a cycle of ``cycle_length`` after steps -1, 0, +1 from position 0."""

  cycle_length: int = 5
  name = "cycle_navigation"

  def __post_init__(self):
    if not isinstance(self.cycle_length, int) or self.cycle_length < 2:
      raise ValueError(f"task 'cycle_navigation': cycle_length must be an integer >= 2, "
                       f"got {self.cycle_length!r}")

  @property
  def symbols(self):
    return tuple(str(i) for i in range(self.cycle_length)) + ("-1", "+1")

  def generate(self, rng, batch_size, length):
    steps = rng.integers(-1, 2, size=(batch_size, length))
    codes = np.where(steps == 0, 0, np.where(steps < 0, self.cycle_length,
                                             self.cycle_length + 1))
    return codes, (steps.sum(axis=1) % self.cycle_length)[:, None], None

  def solve(self, inputs):
    position = 0
    for step in inputs:
      position = (position + int(step)) % self.cycle_length
    return [str(position)]


@dataclasses.dataclass(frozen=True)
class ModularArithmetic(EncoderTask):
  """``d op d op ... d`` with op in + - * and digits below ``modulus``; the value mod it."""

  modulus: int = 5
  name = "modular_arithmetic"

  def __post_init__(self):
    if not isinstance(self.modulus, int) or self.modulus < 2:
      raise ValueError(f"task 'modular_arithmetic': modulus must be an integer >= 2, "
                       f"got {self.modulus!r}")

  @property
  def symbols(self):
    return tuple(str(i) for i in range(self.modulus)) + ("+", "-", "*")

  def generate(self, rng, batch_size, length):
    if length % 2 == 0:
      length -= 1       # the reference's rule: expressions have odd length
    m = self.modulus
    numbers = rng.integers(0, m, size=(batch_size, length // 2 + 1))
    ops = rng.integers(0, 3, size=(batch_size, length // 2))   # 0 +, 1 -, 2 *
    codes = np.empty((batch_size, length), np.int64)
    codes[:, ::2] = numbers
    codes[:, 1::2] = m + ops
    total = np.zeros(batch_size, np.int64)
    term = numbers[:, 0] % m          # the running product, with its sign
    for i in range(ops.shape[1]):
      op, n = ops[:, i], numbers[:, i + 1]
      total = np.where(op == 2, total, (total + term) % m)
      term = np.where(op == 2, term * n, np.where(op == 0, n, -n)) % m
    return codes, ((total + term) % m)[:, None], None

  def solve(self, inputs):
    expression = " ".join(inputs)
    assert set(expression) <= set("0123456789+-* "), expression
    return [str(eval(expression) % self.modulus)]   # python's precedence, exact integers

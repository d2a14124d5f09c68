"""Bracketed modular arithmetic and equation solving (Deletang et al. 2023), modulus 5.

    modular_arithmetic_brackets  ( ( 3 - ( - 2 ) ) + 4 ) -> 4      (3 + 2 + 4 = 9 = 4 mod 5)
    solve_equation               ( x - ( - 2 ) ) = 1 -> 4           (x + 2 = 1 mod 5)

An expression of length n is drawn from the reference's grammar: n = 1, 2, 3, 4 give
``d``, ``- d``, ``( d )``, ``( - d )``; a longer one is ``( left op right )`` with the
left length uniform in 1 .. n-4 and op uniform among + and - (and * with ``mult=True``).
``solve_equation`` draws an expression of length n - 2 (no *), replaces a digit by ``x``
(a uniform position, moved right cyclically to the next digit, as in the reference) and
appends ``= value``; the answer is the replaced digit, the unique solution. Below length 3
it gives the reference's placeholder: n zeros, answer 0. Length is the number of input
tokens. Generation is vectorized over the expression tree, one level at a time.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.chomsky.common import EncoderTask

_OPERATORS = ("+", "-", "*", "(", ")", "x", "=")


def _symbols(modulus: int) -> tuple:
  return tuple(str(i) for i in range(modulus)) + _OPERATORS


def generate_expressions(rng: np.random.Generator, batch_size: int, length: int, modulus: int,
                         mult: bool):
  """[B, length] symbol codes of random expressions and their [B] values mod ``modulus``."""
  plus, minus, _, lpar, rpar = (modulus + i for i in range(5))
  codes = np.full((batch_size, length), -1, np.int64)
  example, start, size = np.arange(batch_size), np.zeros(batch_size, np.int64), np.full(
      batch_size, length, np.int64)
  levels = []
  while example.size:
    leaf = size <= 4
    e, s, n = example[leaf], start[leaf], size[leaf]
    digit = rng.integers(0, modulus, size=e.size)
    paren, neg = n >= 3, (n == 2) | (n == 4)
    codes[e[paren], s[paren]] = lpar
    codes[e[paren], (s + n - 1)[paren]] = rpar
    codes[e[neg], (s + paren)[neg]] = minus
    codes[e, s + paren + neg] = digit
    leaf_value = np.where(neg, -digit, digit) % modulus
    e, s, n = example[~leaf], start[~leaf], size[~leaf]
    left = rng.integers(1, n - 3) if e.size else np.zeros(0, np.int64)
    op = rng.integers(0, 3 if mult else 2, size=e.size)
    codes[e, s] = lpar
    codes[e, s + 1 + left] = plus + op
    codes[e, s + n - 1] = rpar
    levels.append((leaf, leaf_value, op))
    example = np.concatenate([e, e])
    start = np.concatenate([s + 1, s + 2 + left])
    size = np.concatenate([left, n - 3 - left])
  values = np.zeros(0, np.int64)
  for leaf, leaf_value, op in reversed(levels):   # children first
    k = op.size
    a, b = values[:k], values[k:]
    inner = np.where(op == 0, a + b, np.where(op == 1, a - b, a * b)) % modulus
    out = np.empty(leaf.size, np.int64)
    out[leaf], out[~leaf] = leaf_value, inner
    values = out
  return codes, values


def evaluate(tokens: list[str], modulus: int) -> int:
  """Value of a tokenized expression (python's own parser), mod ``modulus``."""
  text = " ".join(tokens)
  assert set(text) <= set("0123456789+-*() "), text
  return eval(text) % modulus


@dataclasses.dataclass(frozen=True)
class _Modular(EncoderTask):
  modulus: int = 5

  def __post_init__(self):
    if not isinstance(self.modulus, int) or not 2 <= self.modulus <= 10:
      raise ValueError(f"task {self.name!r}: modulus must be an integer in [2, 10], "
                       f"got {self.modulus!r}")

  @property
  def symbols(self):
    return _symbols(self.modulus)


@dataclasses.dataclass(frozen=True)
class ModularArithmeticBrackets(_Modular):
  mult: bool = False
  name = "modular_arithmetic_brackets"

  def generate(self, rng, batch_size, length):
    codes, values = generate_expressions(rng, batch_size, length, self.modulus, self.mult)
    return codes, values[:, None], None

  def solve(self, inputs):
    return [str(evaluate(inputs, self.modulus))]


@dataclasses.dataclass(frozen=True)
class SolveEquation(_Modular):
  name = "solve_equation"

  def generate(self, rng, batch_size, length):
    m = self.modulus
    if length < 3:
      zeros = np.zeros((batch_size, length), np.int64)
      return zeros, zeros[:, :1] if length else np.zeros((batch_size, 1), np.int64), None
    n = length - 2
    codes, values = generate_expressions(rng, batch_size, n, m, mult=False)
    rows = np.arange(batch_size)
    chosen = rng.integers(0, n, size=batch_size)
    # First digit at or after `chosen`, cyclically: suffix minimum over the doubled row.
    position = np.where(np.concatenate([codes, codes], 1) < m, np.arange(2 * n), 2 * n)
    following = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1]
    where = following[rows, chosen] % n
    answer = codes[rows, where].copy()
    codes[rows, where] = m + 5                              # x
    tail = np.stack([np.full(batch_size, m + 6), values], 1)  # = value
    return np.concatenate([codes, tail], 1), answer[:, None], None

  def solve(self, inputs):
    if "x" not in inputs:
      return ["0"]
    left, right = inputs[:-2], int(inputs[-1])
    roots = [v for v in range(self.modulus)
             if evaluate([str(v) if t == "x" else t for t in left], self.modulus) == right]
    assert len(roots) == 1, (inputs, roots)
    return [str(roots[0])]

"""ALiBi (Press et al. 2022): a per-head linear penalty on query-key distance.

score[h, i, j] += slope_h * (j - i) for a causal decoder (j <= i), and -slope_h * |j - i|
in the bidirectional variant for the encoder. The bias is not scaled by 1/sqrt(d).

Slopes follow the official recursion: for n a power of two, a geometric sequence starting
at 2^(-8/n); otherwise the slopes of the nearest smaller power of two followed by every
other slope of the next power of two (the "2^(-8/n)" prose is only right for powers of two).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.attention.bias import AlibiBias
from lengthgen.positional.base import Encoding


def _power_of_two_slopes(n: int) -> list[float]:
  start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
  return [start * start**i for i in range(n)]


def alibi_slopes(num_heads: int) -> np.ndarray:
  """Per-head ALiBi slopes for any head count (official recursion), float32 [H]."""
  if not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
    raise ValueError(f"alibi_slopes needs a positive head count, got {num_heads!r}")

  def slopes(n: int) -> list[float]:
    if math.log2(n).is_integer():
      return _power_of_two_slopes(n)
    closest = 2 ** math.floor(math.log2(n))
    return _power_of_two_slopes(closest) + slopes(2 * closest)[0::2][:n - closest]

  return np.asarray(slopes(int(num_heads)), dtype=np.float32)


class AlibiModule(nn.Module):
  """Returns an ``AlibiBias`` spec; attention computes the bias from positions."""

  num_heads: int
  bidirectional: bool = False

  def __call__(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array, *,
               train: bool = False):
    del q_positions_BT, k_positions_BS, train
    return AlibiBias(jnp.asarray(alibi_slopes(self.num_heads)), bidirectional=self.bidirectional)


@dataclasses.dataclass(frozen=True)
class Alibi(Encoding):
  """ALiBi linear biases (Press et al. 2022); symmetric |i - j| form in the encoder."""

  share_bias: bool = True
  name = "alibi"

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module:
    return AlibiModule(num_heads, bidirectional=not causal)

"""FIRE (Li et al. 2023, "Functional Interpolation for Relative Positions").

    b(i, j) = f(psi(i - j) / psi(max(L, i))),   psi(x) = log(c x + 1)

with learnable c > 0 and threshold L, and f a small MLP mapping the normalized distance to
one bias per head. We use one hidden layer of 32 ReLU units, the size the paper uses: the
input is a single scalar, so a deeper f buys nothing on these tasks while costing an MLP
evaluation per (query, key) pair. c starts at 0.1 and L at 512 (the paper's initialization
ranges). In the non-causal encoder the distance is |i - j| and the MLP also sees the sign of
j - i, so keys before and after the query can be told apart.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.positional.base import Encoding


def fire_normalized_distance(q_positions_BT, k_positions_BS, c, threshold):
  """psi(|i - j|) / psi(max(L, i)) with psi(x) = log(c x + 1), float32 [B, T, S]."""
  i = q_positions_BT.astype(jnp.float32)[:, :, None]
  j = k_positions_BS.astype(jnp.float32)[:, None, :]
  psi = lambda x: jnp.log(c * x + 1.0)
  return psi(jnp.abs(i - j)) / psi(jnp.maximum(threshold, i))


def fire_features(q_positions_BT, k_positions_BS, raw_c, raw_threshold, *,
                  bidirectional: bool) -> jax.Array:
  """The MLP's input, float32 [B, T, S, 1] (causal) or [B, T, S, 2] (bidirectional).

  ``raw_c`` and ``raw_threshold`` are the stored parameters: c = softplus(raw_c) > 0 and
  L = |raw_threshold|. The first feature is the normalized distance; the bidirectional form
  adds the sign of j - i, so keys before and after the query can be told apart.
  """
  c = jax.nn.softplus(raw_c)
  x = fire_normalized_distance(q_positions_BT, k_positions_BS, c, jnp.abs(raw_threshold))
  x = x[..., None]
  if bidirectional:
    sign = jnp.sign(k_positions_BS[:, None, :] - q_positions_BT[:, :, None])
    x = jnp.concatenate([x, sign[..., None].astype(jnp.float32)], axis=-1)
  return x


class FireBias(nn.Module):
  num_heads: int
  bidirectional: bool = False
  hidden: int = 32
  c_init: float = 0.1
  threshold_init: float = 512.0

  @nn.compact
  def __call__(self, q_positions_BT, k_positions_BS, *, train: bool = False):
    del train
    inverse_softplus = lambda y: math.log(math.expm1(y))
    raw_c = self.param("c", nn.initializers.constant(inverse_softplus(self.c_init)), ())
    raw_threshold = self.param("threshold", nn.initializers.constant(self.threshold_init), ())
    x = fire_features(q_positions_BT, k_positions_BS, raw_c, raw_threshold,
                      bidirectional=self.bidirectional)
    h = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
    return jnp.moveaxis(nn.Dense(self.num_heads, name="out")(h), -1, 1)  # [B, H, T, S]


@dataclasses.dataclass(frozen=True)
class Fire(Encoding):
  """FIRE learned relative bias (Li et al. 2023)."""

  hidden: int = 32
  c_init: float = 0.1
  threshold_init: float = 512.0
  share_bias: bool = False
  name = "fire"

  def __post_init__(self):
    if self.hidden < 1 or self.c_init <= 0 or self.threshold_init <= 0:
      raise ValueError("fire: hidden must be >= 1 and c_init, threshold_init > 0; got "
                       f"{self.hidden}, {self.c_init}, {self.threshold_init}")

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module:
    return FireBias(num_heads, bidirectional=not causal, hidden=self.hidden,
                    c_init=self.c_init, threshold_init=self.threshold_init)

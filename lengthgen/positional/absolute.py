"""Absolute position embeddings added to the token embeddings.

* ``sinusoidal`` (Vaswani et al. 2017): PE[p, 2i] = sin(p / 10000^(2i/d)),
  PE[p, 2i+1] = cos(p / 10000^(2i/d)). Defined at every position.
* ``learned`` (GPT-2 style): a trainable [max_length, d] table. Positions at or beyond
  ``max_length`` raise an error instead of wrapping around or clamping silently.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.positional.base import Encoding


def sinusoid_frequencies(width: int, base: float = 10000.0) -> jax.Array:
  """The ``width // 2`` frequencies ``base^(-2i / width)`` of a sinusoid of ``width``, float32
  (the absolute table's here, the relative encoding's distance sinusoid)."""
  i = jnp.arange(width // 2, dtype=jnp.float32)
  return base ** (-2.0 * i / width)


def sinusoidal_table(positions: jax.Array, width: int, *, base: float = 10000.0) -> jax.Array:
  """Sinusoidal embeddings of ``positions`` (any shape) -> positions.shape + (width,), float32.

  Even channels hold sines and odd channels cosines, as in the original paper. Deletang et
  al.'s ``sinusoid_position_encoding`` (the same frequencies, base^(-2i/width)) lays them out
  as [all sines | all cosines] instead: a fixed permutation of the model's channels, which
  changes nothing in distribution, as the table is added to token embeddings whose init, like
  every layer's, draws all channels alike, and Adam updates each coordinate on its own.
  """
  if width % 2:
    raise ValueError(f"sinusoidal embedding needs an even width, got {width}")
  angles = positions.astype(jnp.float32)[..., None] * sinusoid_frequencies(width, base)
  return jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1).reshape(
      positions.shape + (width,))


class SinusoidalEmbedding(nn.Module):
  width: int
  base: float = 10000.0

  def __call__(self, positions_BT: jax.Array, *, train: bool = False) -> jax.Array:
    del train
    return sinusoidal_table(positions_BT, self.width, base=self.base)


def learned_lookup(table_PW: jax.Array, positions_BT: jax.Array) -> jax.Array:
  """Rows of a [max_length, W] position table at int [B, T] positions: [B, T, W]; pure.

  Out-of-range positions are rejected at trace time when static (Encoding.check_positions)
  and poisoned with NaN when only known at run time, never wrapped or clamped.
  """
  max_length = table_PW.shape[0]
  valid = (positions_BT >= 0) & (positions_BT < max_length)
  out = jnp.take(table_PW, jnp.clip(positions_BT, 0, max_length - 1), axis=0)
  return jnp.where(valid[..., None], out, jnp.nan)


class LearnedEmbedding(nn.Module):
  max_length: int
  width: int

  @nn.compact
  def __call__(self, positions_BT: jax.Array, *, train: bool = False) -> jax.Array:
    del train
    table = self.param("table", nn.initializers.normal(0.02), (self.max_length, self.width))
    return learned_lookup(table, positions_BT)


@dataclasses.dataclass(frozen=True)
class Sinusoidal(Encoding):
  """Fixed sinusoidal absolute embeddings (Vaswani et al. 2017)."""

  base: float = 10000.0
  name = "sinusoidal"

  def embedding(self, width: int) -> nn.Module:
    return SinusoidalEmbedding(width, self.base)


@dataclasses.dataclass(frozen=True)
class Learned(Encoding):
  """Trainable absolute position table (GPT-2); errors beyond ``max_length``."""

  max_length: int = 512
  name = "learned"

  def embedding(self, width: int) -> nn.Module:
    return LearnedEmbedding(self.max_length, width)

  def position_limit(self) -> int:
    return self.max_length


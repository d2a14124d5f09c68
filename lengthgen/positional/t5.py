"""T5 relative position bias (Raffel et al. 2020), as used by Kazemnejad et al. 2023.

A learned scalar per head and distance bucket is added to the attention scores. The bucket
function is the original one (Mesh TensorFlow / HF ``_relative_position_bucket``): exact
buckets for small distances, logarithmically wider ones up to ``max_distance``, one last
bucket beyond. Unidirectional (decoder) buckets only look back; bidirectional (encoder)
buckets spend half of them on keys after the query.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.positional.base import Encoding


def t5_relative_position_bucket(relative_position, *, bidirectional: bool, num_buckets: int = 32,
                                max_distance: int = 128) -> jax.Array:
  """Bucket index (int32) of ``relative_position = key - query``, any shape."""
  relative_position = jnp.asarray(relative_position, jnp.int32)
  n = -relative_position  # positive for keys before the query
  ret = jnp.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    ret = ret + (n < 0).astype(jnp.int32) * num_buckets
    n = jnp.abs(n)
  else:
    n = jnp.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  log_ratio = jnp.log(jnp.maximum(n, 1).astype(jnp.float32) / max_exact) / math.log(
      max_distance / max_exact)
  large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(jnp.int32)
  large = jnp.minimum(large, num_buckets - 1)
  return ret + jnp.where(is_small, n, large)


class RelativeBiasModule(nn.Module):
  num_heads: int
  bidirectional: bool
  num_buckets: int = 32
  max_distance: int = 128

  @nn.compact
  def __call__(self, q_positions_BT, k_positions_BS, *, train: bool = False):
    del q_positions_BT, k_positions_BS, train
    from lengthgen.attention import RelativeBias
    table = self.param("table", nn.initializers.normal(0.02), (self.num_heads, self.num_buckets))
    return RelativeBias(table, bidirectional=self.bidirectional, num_buckets=self.num_buckets,
                        max_distance=self.max_distance)


@dataclasses.dataclass(frozen=True)
class T5(Encoding):
  """T5 bucketed relative bias; ``share_bias`` computes one table for all layers."""

  num_buckets: int = 32
  max_distance: int = 128
  share_bias: bool = False
  name = "t5"

  def __post_init__(self):
    if self.num_buckets < 2 or self.max_distance <= self.num_buckets // 2:
      raise ValueError(f"t5: need num_buckets >= 2 and max_distance > num_buckets // 2; got "
                       f"num_buckets={self.num_buckets}, max_distance={self.max_distance}")

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module:
    return RelativeBiasModule(num_heads, bidirectional=not causal,
                              num_buckets=self.num_buckets, max_distance=self.max_distance)

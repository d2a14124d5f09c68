"""Bias specs: what a positional encoding adds to the attention scores.

A spec is computed by the attention implementation from query and key positions, so the
reference can materialize it and a kernel can compute it tile by tile in O(T) memory.
A dense array [B or 1, H, T, S] is also accepted as a bias. The T5 bucket function lives
here, with the bias it indexes; ``lengthgen.positional`` and the kernels import it from here.
"""

from __future__ import annotations

import math

import flax.struct
import jax
import jax.numpy as jnp


def t5_relative_position_bucket(relative_position, *, bidirectional: bool, num_buckets: int = 32,
                                max_distance: int = 128) -> jax.Array:
  """T5's bucket index (int32) of ``relative_position = key - query``, any shape.

  The original function (Mesh TensorFlow / HF ``_relative_position_bucket``): exact buckets
  for small distances, logarithmically wider ones up to ``max_distance``, one last bucket
  beyond. Unidirectional buckets only look back; bidirectional ones spend half of them on
  keys after the query.
  """
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


def _check_shape(name: str, value, want: tuple[int, ...], num_heads: int) -> None:
  got = tuple(jnp.shape(value))
  if got != want:
    raise ValueError(f"{name} must have shape {want} (H = {num_heads} from q's axis 2 of "
                     f"[B, T, H, D]), got shape {got}")


@flax.struct.dataclass
class AlibiBias:
  """ALiBi: adds slope_h * (key_pos - query_pos); with ``bidirectional``, -slope_h * |k - q|.

  Attributes:
    slopes: [H] per-head slopes (see ``lengthgen.positional.alibi_slopes``).
    bidirectional: use the symmetric form (non-causal encoder).
  """

  slopes: jax.Array
  bidirectional: bool = flax.struct.field(pytree_node=False, default=False)

  def check(self, num_heads: int) -> None:
    """Raises ``ValueError`` unless ``slopes`` has shape [num_heads] (H from q's axis 2)."""
    _check_shape("AlibiBias.slopes", self.slopes, (num_heads,), num_heads)

  def dense(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array) -> jax.Array:
    """Materializes the bias from positions [B, T] and [B, S], float32 [B, H, T, S]."""
    if jnp.ndim(self.slopes) != 1:
      raise ValueError(f"AlibiBias.slopes must be a vector [H], got shape "
                       f"{jnp.shape(self.slopes)}")
    rel = (k_positions_BS[:, None, :] - q_positions_BT[:, :, None]).astype(jnp.float32)
    if self.bidirectional:
      rel = -jnp.abs(rel)
    return jnp.asarray(self.slopes, jnp.float32)[None, :, None, None] * rel[:, None]


def materialize(bias, q_positions_BT: jax.Array, k_positions_BS: jax.Array) -> jax.Array | None:
  """Any bias spec (or dense array, or None) as a float32 [B|1, H, T, S] array (or None)."""
  if bias is None:
    return None
  if hasattr(bias, "dense"):
    return bias.dense(q_positions_BT, k_positions_BS)
  bias = jnp.asarray(bias)
  if bias.ndim != 4:
    raise ValueError(f"a dense attention bias must be [B|1, H, T, S], got shape {bias.shape}")
  return bias.astype(jnp.float32)


@flax.struct.dataclass
class RelativeBias:
  """T5 relative position bias: a learned per-head value for each distance bucket.

  Attributes:
    table_HK: [H, num_buckets] learned bias per head and bucket.
    bidirectional: buckets distinguish keys before and after the query (encoder).
    num_buckets, max_distance: the bucket function's parameters (T5: 32, 128).
  """

  table_HK: jax.Array
  bidirectional: bool = flax.struct.field(pytree_node=False, default=False)
  num_buckets: int = flax.struct.field(pytree_node=False, default=32)
  max_distance: int = flax.struct.field(pytree_node=False, default=128)

  def check(self, num_heads: int) -> None:
    """Raises ``ValueError`` unless ``table_HK`` is [num_heads, num_buckets]."""
    _check_shape("RelativeBias.table_HK", self.table_HK, (num_heads, self.num_buckets),
                 num_heads)

  def buckets(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array) -> jax.Array:
    rel = k_positions_BS[:, None, :] - q_positions_BT[:, :, None]
    return t5_relative_position_bucket(rel, bidirectional=self.bidirectional,
                                       num_buckets=self.num_buckets,
                                       max_distance=self.max_distance)

  def dense(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array) -> jax.Array:
    """Materializes the bias from positions [B, T] and [B, S], float32 [B, H, T, S]."""
    if jnp.ndim(self.table_HK) != 2 or jnp.shape(self.table_HK)[1] != self.num_buckets:
      raise ValueError(f"RelativeBias.table_HK must be [H, num_buckets={self.num_buckets}], "
                       f"got shape {jnp.shape(self.table_HK)}")
    bucket_BTS = self.buckets(q_positions_BT, k_positions_BS)
    table = jnp.asarray(self.table_HK, jnp.float32)
    return jnp.moveaxis(table.T[bucket_BTS], -1, 1)

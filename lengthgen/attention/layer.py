"""Multi-head self-attention layer: projections, the rotate hook, and the attention call."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.attention import dot_product_attention


class MultiHeadAttention(nn.Module):
  """Self-attention whose position information arrives as a ``Rotation`` and a bias spec.

  The layer never branches on encoding names: it applies whatever rotation and bias the
  model hands it.
  """

  num_heads: int
  head_dim: int
  causal: bool = True
  normalizer: str = "softmax"
  implementation: str = "auto"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BTW: jax.Array, *, positions_BT: jax.Array, rotation=None, bias=None,
               lengths=None, return_weights: bool = False):
    dense = lambda name: nn.DenseGeneral((self.num_heads, self.head_dim), dtype=self.dtype,
                                         name=name)
    q, k, v = dense("query")(x_BTW), dense("key")(x_BTW), dense("value")(x_BTW)
    if rotation is not None:
      q = rotation.apply(q, is_query=True)
      k = rotation.apply(k, is_query=False)
    out = dot_product_attention(
        q, k, v, normalizer=self.normalizer, causal=self.causal, bias=bias,
        q_positions=positions_BT, k_positions=positions_BT, lengths=lengths,
        implementation=self.implementation, return_weights=return_weights)
    weights = None
    if return_weights:
      out, weights = out
    out = nn.DenseGeneral(x_BTW.shape[-1], axis=(-2, -1), dtype=self.dtype, name="out")(out)
    return out, weights

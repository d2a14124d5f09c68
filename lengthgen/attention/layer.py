"""Multi-head self-attention layer: projections, the rotate hook, and the attention call."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.attention import dot_product_attention
from lengthgen.config import ModelConfig


class MultiHeadAttention(nn.Module):
  """Self-attention whose position information arrives as a ``Rotation`` and a bias spec.

  The layer never branches on encoding names: it applies whatever rotation and bias the
  model hands it. Attention options (normalizer, masks, implementation) come from the
  model config.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x_BTW: jax.Array, *, positions_BT: jax.Array, rotation=None, bias=None,
               lengths=None, return_weights: bool = False):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    dense = lambda name: nn.DenseGeneral((c.num_heads, c.head_dim), dtype=dtype, name=name)
    q, k, v = dense("query")(x_BTW), dense("key")(x_BTW), dense("value")(x_BTW)
    if rotation is not None:
      q = rotation.apply(q, is_query=True)
      k = rotation.apply(k, is_query=False)
    out = dot_product_attention(
        q, k, v, normalizer=c.normalizer, causal=c.causal, window=c.window,
        global_tokens=c.global_tokens, bias=bias, q_positions=positions_BT,
        k_positions=positions_BT, lengths=lengths, implementation=c.attention_implementation,
        return_weights=return_weights)
    weights = None
    if return_weights:
      out, weights = out
    out = nn.DenseGeneral(x_BTW.shape[-1], axis=(-2, -1), dtype=dtype, name="out")(out)
    return out, weights

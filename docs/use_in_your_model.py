"""Use lengthgen's encodings and attention in your own Flax model (run by tests/test_docs.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

import lengthgen.attention as attn
import lengthgen.positional as pe


class MySelfAttention(nn.Module):
  num_heads: int = 4
  head_dim: int = 16

  @nn.compact
  def __call__(self, x_BTW, positions_BT):
    proj = lambda name: nn.DenseGeneral((self.num_heads, self.head_dim), name=name)
    q, k, v = proj("q")(x_BTW), proj("k")(x_BTW), proj("v")(x_BTW)
    # RoPE with explicit positions (angles in float32), scaled by YaRN for 4x longer inputs.
    inv_freq = pe.get("rope_yarn", scale=4.0, train_length=64).inv_frequencies(self.head_dim)
    q = pe.apply_rope(q, positions_BT, inv_freq)
    k = pe.apply_rope(k, positions_BT, inv_freq)
    # ALiBi computed from positions by the attention itself; LSSA softplus normalizer.
    out = attn.dot_product_attention(
        q, k, v, causal=True, normalizer="softplus",
        bias=attn.AlibiBias(jnp.asarray(pe.alibi_slopes(self.num_heads))),
        q_positions=positions_BT, k_positions=positions_BT)
    return nn.DenseGeneral(x_BTW.shape[-1], axis=(-2, -1), name="out")(out)


x = jax.random.normal(jax.random.key(0), (2, 10, 64))
positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
layer = MySelfAttention()
params = layer.init(jax.random.key(1), x, positions)
y = layer.apply(params, x, positions)
print(y.shape)  # (2, 10, 64)

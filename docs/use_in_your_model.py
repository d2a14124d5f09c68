"""Use lengthgen's encodings and attention in your own Flax model (run by tests/test_docs.py)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

import lengthgen.attention as attn
import lengthgen.positional as pe

yarn = pe.get("rope_yarn", scale=4.0, train_length=64)  # every rotary encoding: the same call


class MySelfAttention(nn.Module):
  num_heads: int = 4
  head_dim: int = 16

  @nn.compact
  def __call__(self, x_BTW, positions_BT):
    proj = lambda name: nn.DenseGeneral((self.num_heads, self.head_dim), name=name)
    q_BTHD, k_BTHD, v_BTHD = proj("q")(x_BTW), proj("k")(x_BTW), proj("v")(x_BTW)
    # Everything YaRN means: its frequencies, its layout, its attention factor on q.
    q_BTHD, k_BTHD = yarn.rotate_qk(q_BTHD, k_BTHD, positions_BT)
    # ALiBi computed from positions by the attention; SSMax with its learned per-head s.
    out_BTHD = attn.dot_product_attention(
        q_BTHD, k_BTHD, v_BTHD, causal=True, normalizer="ssmax",
        normalizer_params={"ssmax_scale": attn.ssmax_scale_param(self, self.num_heads)},
        bias=attn.AlibiBias(jnp.asarray(pe.alibi_slopes(self.num_heads))),
        q_positions=positions_BT, k_positions=positions_BT)
    return nn.DenseGeneral(x_BTW.shape[-1], axis=(-2, -1), name="out")(out_BTHD)


x = jax.random.normal(jax.random.key(0), (2, 10, 64))
positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
layer = MySelfAttention()
params = layer.init(jax.random.key(1), x, positions)
y = layer.apply(params, x, positions)
print(y.shape)  # (2, 10, 64)

# Plain JAX (or nnx): the same pure functions, parameters passed explicitly.
q, k, v = jax.random.normal(jax.random.key(2), (3, 2, 10, 4, 16))  # each [B, T, H, D]
q, k = yarn.rotate_qk(q, k, positions)
out = attn.dot_product_attention(q, k, v, normalizer="ssmax",
                                 normalizer_params={"ssmax_scale": attn.init_ssmax_scale(4)})
print(out.shape)  # (2, 10, 4, 16)

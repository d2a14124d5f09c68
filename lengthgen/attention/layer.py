"""Multi-head self-attention layer: projections, the rotate hook, and the attention call."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.attention import dot_product_attention
from lengthgen.config import ModelConfig


SSMAX_INIT = 0.43  # s * log n = 1 at n ~ 10: sharpening grows from there with length

# normalizer_options each normalizer accepts (validated at start-up).
NORMALIZER_OPTIONS = {"softmax": (), "ssmax": ("init",), "softplus": (),
                      "softplus_reweight": ("power",)}


def validate_attention_config(c: ModelConfig) -> None:
  """Raises ``ValueError`` naming the config field for an invalid attention setup."""
  allowed = NORMALIZER_OPTIONS.get(c.normalizer, ())
  unknown = sorted(set(c.normalizer_options) - set(allowed))
  if unknown:
    raise ValueError(f"config.model.normalizer_options: unknown option(s) {unknown} for "
                     f"normalizer {c.normalizer!r}; valid options: {list(allowed) or 'none'}")
  power = c.normalizer_options.get("power", 15.0)
  if not isinstance(power, (int, float)) or isinstance(power, bool) or power <= 0:
    raise ValueError(f"config.model.normalizer_options.power must be a positive number, "
                     f"got {power!r}")
  if c.window is not None and c.window < 1:
    raise ValueError(f"config.model.window must be a positive integer or None, got {c.window}")
  if c.global_tokens < 0:
    raise ValueError(f"config.model.global_tokens must be >= 0, got {c.global_tokens}")
  if c.global_tokens and c.window is None:
    raise ValueError("config.model.global_tokens needs config.model.window (the Lambda mask "
                     "is a local window plus global tokens)")
  if c.length_temperature and c.normalizer != "softmax":
    raise ValueError("config.model.length_temperature applies to the softmax normalizer only; "
                     f"got normalizer {c.normalizer!r}")


class MultiHeadAttention(nn.Module):
  """Self-attention whose position information arrives as a ``Rotation`` and a bias spec.

  The layer never branches on encoding names: it applies whatever rotation and bias the
  model hands it. Attention options (normalizer, masks, implementation) come from the
  model config.
  """

  config: ModelConfig

  @nn.compact
  def __call__(self, x_BTW: jax.Array, *, positions_BT: jax.Array, rotation=None, bias=None,
               lengths=None, return_weights: bool = False, cap_rotation=None):
    c = self.config
    dtype = jnp.dtype(c.dtype)
    dense = lambda name: nn.DenseGeneral((c.num_heads, c.head_dim), dtype=dtype, name=name)
    q, k, v = dense("query")(x_BTW), dense("key")(x_BTW), dense("value")(x_BTW)
    if c.qk_norm:  # QK-norm: bounded logits whatever the length (a fair softmax baseline)
      q = nn.RMSNorm(dtype=dtype, name="query_norm")(q)
      k = nn.RMSNorm(dtype=dtype, name="key_norm")(k)
    q_capped = None if cap_rotation is None else cap_rotation.apply(q, is_query=True)
    if rotation is not None:
      q = rotation.apply(q, is_query=True)
      k = rotation.apply(k, is_query=False)
    options = dict(c.normalizer_options)
    ssmax_scale = length_scale = None
    if c.normalizer == "ssmax":
      init = options.pop("init", SSMAX_INIT)
      ssmax_scale = self.param("ssmax_scale", nn.initializers.constant(init), (c.num_heads,))
    if c.length_temperature:
      length_scale = self.param("length_scale", nn.initializers.zeros, (c.num_heads,))
    out = dot_product_attention(
        q, k, v, normalizer=c.normalizer, causal=c.causal, window=c.window,
        global_tokens=c.global_tokens, bias=bias, q_positions=positions_BT,
        k_positions=positions_BT, lengths=lengths, implementation=c.attention_implementation,
        return_weights=return_weights, ssmax_scale=ssmax_scale, length_scale=length_scale,
        reweight_power=float(options.pop("power", 15.0)), q_capped=q_capped)
    weights = None
    if return_weights:
      out, weights = out
    out = nn.DenseGeneral(x_BTW.shape[-1], axis=(-2, -1), dtype=dtype, name="out")(out)
    return out, weights

"""Multi-head self-attention layer: projections, the rotate hook, and the attention call."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.attention import declare_normalizer_params, dot_product_attention, normalizers

# The normalizer modifiers the layer turns on from its boolean spec fields of the same name.
MODIFIERS = ("length_temperature",)
# Initializations of the projection kernels (AttentionSpec.init).
INITS = ("lecun_normal", "t5")


@dataclasses.dataclass(frozen=True)
class AttentionSpec:
  """What ``MultiHeadAttention`` needs; frozen and hashable.

  Attributes:
    num_heads, head_dim: H and D of the q, k, v projections.
    normalizer: a name of ``lengthgen.attention.NORMALIZERS``.
    normalizer_options: its options; a mapping is stored as sorted (name, value) pairs.
    causal: query i sees keys j <= i.
    window, global_tokens: sliding window; with global tokens, the Lambda mask.
    implementation: one of ``lengthgen.attention.IMPLEMENTATIONS``.
    qk_norm: RMS-normalize q and k per head (learned gain) before positions.
    length_temperature: the softmax length temperature modifier (a learned ``length_scale``).
    score_scale: the softmax family's q.k scale; None is 1/sqrt(D), HuggingFace T5 uses 1.0
      (its init folds the factor into the query kernel). The softplus normalizers take none
      (``Normalizer.check_scale``): leave it None for them.
    use_bias: the q, k, v and out projections have biases (T5's have none).
    init: how the projection kernels start, one of ``INITS``: "lecun_normal" (flax's
      default) or "t5" (HuggingFace T5's normal stds, ``t5_projection_stds``).
    dtype: compute dtype name.
  """

  num_heads: int
  head_dim: int
  normalizer: str = "softmax"
  normalizer_options: Any = ()
  causal: bool = True
  window: int | None = None
  global_tokens: int = 0
  implementation: str = "auto"
  qk_norm: bool = False
  length_temperature: bool = False
  score_scale: float | None = None
  use_bias: bool = True
  init: str = "lecun_normal"
  dtype: str = "float32"

  def __post_init__(self):
    object.__setattr__(self, "normalizer_options",
                       tuple(sorted(dict(self.normalizer_options).items())))
    if self.init not in INITS:
      raise ValueError(f"AttentionSpec.init: unknown value {self.init!r}; valid values: "
                       f"{', '.join(INITS)}")


def t5_projection_stds(width: int, num_heads: int, head_dim: int) -> dict[str, float]:
  """HuggingFace ``T5PreTrainedModel._init_weights`` (factor 1) for the attention kernels.

  q ~ N(0, (W D)^-0.5) (T5's missing 1/sqrt(D) moved into the init), k and v ~ N(0, W^-0.5),
  out ~ N(0, (H D)^-0.5); the standard deviation of each, by projection name.
  """
  return {"query": (width * head_dim) ** -0.5, "key": width ** -0.5, "value": width ** -0.5,
          "out": (num_heads * head_dim) ** -0.5}


def validate_attention_config(c) -> None:
  """Raises ``ValueError`` naming the config field for an invalid attention setup.

  ``c`` is any object with the ``ModelConfig`` attribute names used here: normalizer,
  normalizer_options, window, global_tokens, length_temperature.
  """
  try:
    norm = normalizers.get(c.normalizer)
  except ValueError as e:
    raise ValueError(f"config.model.normalizer: {e}") from None
  try:
    norm.check_options(dict(c.normalizer_options))
  except normalizers.OptionError as e:
    raise ValueError(f"config.model.normalizer_options{'.' if e.option else ': '}{e}") from None
  if c.window is not None and c.window < 1:
    raise ValueError(f"config.model.window must be a positive integer or None, got {c.window}")
  if c.global_tokens < 0:
    raise ValueError(f"config.model.global_tokens must be >= 0, got {c.global_tokens}")
  if c.global_tokens and c.window is None:
    raise ValueError("config.model.global_tokens needs config.model.window (the Lambda mask "
                     "is a local window plus global tokens)")
  for modifier in MODIFIERS:
    if getattr(c, modifier) and modifier not in norm.modifiers:
      owners = [n.name for n in normalizers.NORMALIZERS.values() if modifier in n.modifiers]
      raise ValueError(f"config.model.{modifier} applies to the {' and '.join(owners)} "
                       f"normalizer only; got normalizer {c.normalizer!r}")


class MultiHeadAttention(nn.Module):
  """Self-attention whose position information arrives as a ``Rotation`` and a bias spec.

  The layer never branches on encoding or normalizer names: it applies whatever rotation and
  bias the model hands it, and creates the parameters the normalizer declares.
  """

  spec: AttentionSpec

  @nn.compact
  def __call__(self, x_BTW: jax.Array, *, positions_BT: jax.Array, rotation=None, bias=None,
               lengths=None, return_weights: bool = False, cap_rotation=None,
               query_bias: nn.Module | None = None, train: bool = False):
    """``query_bias``: an encoding's unbound ``query_bias`` module (see
    ``lengthgen.positional.base``); bound here as ``query_bias``, called on the projected q
    and k, its dense [B, H, T, S] result is the layer's score bias."""
    s = self.spec
    dtype = jnp.dtype(s.dtype)
    width = x_BTW.shape[-1]
    stds = t5_projection_stds(width, s.num_heads, s.head_dim) if s.init == "t5" else {}

    def dense(name, features, **kwargs):
      if name in stds:  # else flax's default kernel init (lecun normal)
        kwargs["kernel_init"] = nn.initializers.normal(stds[name])
      return nn.DenseGeneral(features, use_bias=s.use_bias, dtype=dtype, name=name, **kwargs)

    heads = (s.num_heads, s.head_dim)
    q = dense("query", heads)(x_BTW)
    k, v = dense("key", heads)(x_BTW), dense("value", heads)(x_BTW)
    if s.qk_norm:  # QK-norm: bounded logits whatever the length (a fair softmax baseline)
      q = nn.RMSNorm(dtype=dtype, name="query_norm")(q)
      k = nn.RMSNorm(dtype=dtype, name="key_norm")(k)
    q_capped = None if cap_rotation is None else cap_rotation.apply(q, is_query=True)
    if rotation is not None:
      q = rotation.apply(q, is_query=True)
      k = rotation.apply(k, is_query=False)
    if query_bias is not None:
      if bias is not None:
        raise ValueError("an encoding gives both a bias and a query_bias; the layer adds one")
      scale = s.score_scale if s.score_scale is not None else s.head_dim ** -0.5
      bias = query_bias.clone(parent=self, name="query_bias")(
          q, k, positions_BT, positions_BT, scale=scale, train=train)
    norm = normalizers.get(s.normalizer)
    options = norm.resolve_options(dict(s.normalizer_options))
    modifiers = [m for m in MODIFIERS if getattr(s, m)]
    params = declare_normalizer_params(self, s.normalizer, s.num_heads, options,
                                       modifiers=modifiers)
    out = dot_product_attention(
        q, k, v, normalizer=s.normalizer, normalizer_params=params,
        normalizer_options=options, causal=s.causal, window=s.window,
        global_tokens=s.global_tokens, bias=bias, q_positions=positions_BT,
        k_positions=positions_BT, lengths=lengths, scale=s.score_scale,
        implementation=s.implementation, return_weights=return_weights, q_capped=q_capped)
    weights = None
    if return_weights:
      out, weights = out
    out = dense("out", width, axis=(-2, -1))(out)
    return out, weights

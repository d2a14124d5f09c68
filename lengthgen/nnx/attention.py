"""The multi-head self-attention layer in ``flax.nnx``, with its normalizer's parameters.

Projections, optional QK-norm, the rotate hook and ``lengthgen.attention.dot_product_attention``
as in the linen ``lengthgen.attention.layer.MultiHeadAttention``. The learned arrays a
normalizer declares (``ssmax``'s per-head ``ssmax_scale``, softmax's ``length_scale`` with
``length_temperature``) are attributes of the same names, initialized by the normalizer's
initial values (``lengthgen.attention.init_normalizer_params``).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from lengthgen.attention import dot_product_attention, init_normalizer_params, normalizers
from lengthgen.attention import layer as linen_layer
from lengthgen.attention.layer import AttentionSpec
from lengthgen.nnx import convert


class MultiHeadAttention(convert.LinenCounterpart):
  """Self-attention whose positions arrive as a ``Rotation`` and a bias spec.

  The counterpart of ``lengthgen.attention.layer.MultiHeadAttention``; like it, it never
  branches on encoding names. Equal to it in float32; in bfloat16 with ``qk_norm`` the two
  differ by rounding, as ``nnx.RMSNorm`` casts its gain to the compute dtype before
  multiplying and ``nn.RMSNorm`` does not (about 1% of the output's norm in the tests).

  Args:
    spec: ``AttentionSpec`` (H, D, normalizer and its options, mask, implementation,
      ``qk_norm``, ``length_temperature``, compute dtype).
    width: W, the width of the input and output.
    rngs: initializes the projections (lecun-normal kernels, zero biases, as
      ``nn.DenseGeneral``); QK-norm gains start at one, normalizer parameters at the
      normalizer's initial value (e.g. ssmax's option ``init``, 0.43).

  Attributes:
    query, key, value: ``nnx.LinearGeneral`` W -> (H, D), kernels float32 [W, H, D].
    out: ``nnx.LinearGeneral`` (H, D) -> W, kernel float32 [H, D, W].
    query_norm, key_norm: ``nnx.RMSNorm`` over D (only with ``spec.qk_norm``).
    normalizer_param_names: the names of the normalizer's ``nnx.Param`` attributes, each
      float32 [H] (e.g. ``("ssmax_scale",)``; empty for plain softmax).
  """

  def __init__(self, spec: AttentionSpec, width: int, *, rngs: nnx.Rngs):
    self.spec = spec
    dtype = jnp.dtype(spec.dtype)
    heads = (spec.num_heads, spec.head_dim)
    self.query = nnx.LinearGeneral(width, heads, dtype=dtype, rngs=rngs)
    self.key = nnx.LinearGeneral(width, heads, dtype=dtype, rngs=rngs)
    self.value = nnx.LinearGeneral(width, heads, dtype=dtype, rngs=rngs)
    if spec.qk_norm:
      self.query_norm = nnx.RMSNorm(spec.head_dim, dtype=dtype, rngs=rngs)
      self.key_norm = nnx.RMSNorm(spec.head_dim, dtype=dtype, rngs=rngs)
    modifiers = [m for m in linen_layer.MODIFIERS if getattr(spec, m)]
    initial = init_normalizer_params(spec.normalizer, spec.num_heads,
                                     dict(spec.normalizer_options), modifiers=modifiers)
    self.normalizer_param_names = tuple(initial)
    for name, value in initial.items():
      setattr(self, name, nnx.Param(value))
    self.out = nnx.LinearGeneral(heads, width, axis=(-2, -1), dtype=dtype, rngs=rngs)

  def __call__(self, x_BTW: jax.Array, *, positions_BT: jax.Array, rotation=None,
               bias=None, lengths: jax.Array | None = None, return_weights: bool = False,
               cap_rotation=None) -> tuple[jax.Array, jax.Array | None]:
    """Attends over ``x_BTW`` (keys are the queries' own tokens).

    Args:
      x_BTW: [B, T, W] inputs.
      positions_BT: int [B, T] positions, read by position-dependent bias specs.
      rotation: a ``lengthgen.positional.Rotation`` applied to q and k, or None.
      bias: None, ``AlibiBias``, ``RelativeBias``, or a dense [B|1, H, T, T] array.
      lengths: int [B] valid tokens per example; keys from there on are masked.
      return_weights: also return the attention weights (dense reference only).
      cap_rotation: LM-Infinite's distance cap: the rotation at position ``window`` for
        the queries of global tokens beyond the window (see ``dot_product_attention``).

    Returns:
      ``(out_BTW, weights_BHTT)``: [B, T, W] in the compute dtype, and float32
      [B, H, T, T] weights with ``return_weights`` (else None).
    """
    s = self.spec
    q, k, v = self.query(x_BTW), self.key(x_BTW), self.value(x_BTW)
    if s.qk_norm:
      q, k = self.query_norm(q), self.key_norm(k)
    q_capped = None if cap_rotation is None else cap_rotation.apply(q, is_query=True)
    if rotation is not None:
      q = rotation.apply(q, is_query=True)
      k = rotation.apply(k, is_query=False)
    norm = normalizers.get(s.normalizer)
    out = dot_product_attention(
        q, k, v, normalizer=s.normalizer,
        normalizer_params={n: getattr(self, n)[...] for n in self.normalizer_param_names},
        normalizer_options=norm.resolve_options(dict(s.normalizer_options)),
        causal=s.causal, window=s.window, global_tokens=s.global_tokens, bias=bias,
        q_positions=positions_BT, k_positions=positions_BT, lengths=lengths,
        implementation=s.implementation, return_weights=return_weights, q_capped=q_capped)
    weights = None
    if return_weights:
      out, weights = out
    return self.out(out), weights

  @classmethod
  def from_linen(cls, module: linen_layer.MultiHeadAttention,
                 params: Mapping[str, Any]) -> MultiHeadAttention:
    """The nnx layer equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen layer (its ``spec``); W is read from the query kernel.
      params: its parameters: ``query``, ``key``, ``value``, ``out`` (each ``kernel`` and
        ``bias``), ``query_norm`` / ``key_norm`` (``scale``) with ``qk_norm``, and the
        normalizer's arrays (e.g. ``ssmax_scale`` [H]); also ``{"params": {...}}``, or the
        layer's sub-tree of a whole model (e.g. ``params["block_0"]["attention"]``).

    Raises:
      TypeError: ``module`` is not that linen layer.
      ValueError: a parameter is missing, unexpected or of another shape, the layer has a
        ``query_bias`` (the relative encoding), or the spec uses
        the t5 block's fields (``score_scale``, ``use_bias=False``, ``init="t5"``), which this
        layer does not implement.
    """
    convert.check_linen_module(module, linen_layer.MultiHeadAttention)
    if "query_bias" in convert.unwrap_params(params):
      raise ValueError(
          "lengthgen.nnx.MultiHeadAttention has no query_bias (the relative encoding's u, v "
          "and W_r of this layer): compute its dense bias with "
          "lengthgen.positional.relative_logits from those parameters and pass it as bias")
    spec = module.spec
    if spec.score_scale is not None or not spec.use_bias or spec.init != "lecun_normal":
      raise ValueError(
          "lengthgen.nnx.MultiHeadAttention implements the pre_ln block's attention only "
          "(score_scale=None, use_bias=True, init='lecun_normal'); got score_scale="
          f"{spec.score_scale!r}, use_bias={spec.use_bias!r}, init={spec.init!r}")
    width = jnp.shape(convert.linen_field(params, "query", "kernel"))[0]
    return convert.build_from_linen(lambda rngs: cls(module.spec, width, rngs=rngs), params)

"""The T5 relative position bias (Raffel et al. 2020) in ``flax.nnx``.

The module owns the learned [H, num_buckets] table and returns the bias spec
``lengthgen.attention.RelativeBias``; the attention computes the bias from the positions
with the shared bucket function ``t5_relative_position_bucket``.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from lengthgen.attention.bias import RelativeBias
from lengthgen.nnx import convert
from lengthgen.positional import t5 as linen_t5


class RelativeBiasModule(convert.LinenCounterpart):
  """T5's learned bias per head and distance bucket, as a bias spec.

  The counterpart of ``lengthgen.positional.t5.RelativeBiasModule`` (the ``t5`` encoding's
  ``bias(num_heads, causal=...)``).

  Args:
    num_heads: H.
    bidirectional: buckets tell keys after the query from keys before it (non-causal
      encoder); a causal decoder uses ``False``.
    num_buckets: K, distance buckets (T5: 32).
    max_distance: distances from here on share the last bucket (T5: 128).
    init_std: the table's initial std, as the linen module's (0.02; W^-0.5 under the t5
      block).
    rngs: draws the float32 table from normal(init_std), as the linen module does.

  Attributes:
    table: ``nnx.Param`` float32 [H, K].
  """

  def __init__(self, num_heads: int, bidirectional: bool, num_buckets: int = 32,
               max_distance: int = 128, init_std: float = 0.02, *, rngs: nnx.Rngs):
    self.num_heads = num_heads
    self.bidirectional = bidirectional
    self.num_buckets = num_buckets
    self.max_distance = max_distance
    self.init_std = init_std
    self.table = nnx.Param(
        nnx.initializers.normal(init_std)(rngs.params(), (num_heads, num_buckets), jnp.float32))

  def __call__(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array, *,
               train: bool = False) -> RelativeBias:
    """The bias spec; pass it as ``bias=`` to ``dot_product_attention`` or the layer.

    Args:
      q_positions_BT, k_positions_BS: unused here (the attention reads the positions it is
        given); taken so every bias module has one signature.
      train: unused.

    Returns:
      ``RelativeBias`` holding the table; ``.dense(q_positions_BT, k_positions_BS)`` is the
      float32 [B, H, T, S] bias.
    """
    del q_positions_BT, k_positions_BS, train
    return RelativeBias(self.table[...], bidirectional=self.bidirectional,
                        num_buckets=self.num_buckets, max_distance=self.max_distance)

  @classmethod
  def from_linen(cls, module: linen_t5.RelativeBiasModule,
                 params: Mapping[str, Any]) -> RelativeBiasModule:
    """The nnx module equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen module, e.g. ``pe.get("t5").bias(4, causal=True)``.
      params: its parameters, ``{"table": [H, K]}`` (or ``{"params": {...}}``).

    Raises:
      TypeError: ``module`` is not that linen module.
      ValueError: the table is missing or of another shape.
    """
    convert.check_linen_module(module, linen_t5.RelativeBiasModule)
    return convert.build_from_linen(
        lambda rngs: cls(module.num_heads, module.bidirectional, module.num_buckets,
                         module.max_distance, module.init_std, rngs=rngs), params)

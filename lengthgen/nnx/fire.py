"""FIRE (Li et al. 2023) in ``flax.nnx``: a learned bias ``f(psi(i - j) / psi(max(L, i)))``.

``psi(x) = log(c x + 1)``; c > 0 (stored before a softplus), the threshold L (stored before
an absolute value) and the MLP f (one hidden ReLU layer, one output per head) are learned.
The MLP input (normalized distance, and the sign of j - i when bidirectional) is the shared
``lengthgen.positional.fire.fire_features``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from lengthgen.nnx import convert
from lengthgen.positional import fire as linen_fire


class FireBias(convert.LinenCounterpart):
  """FIRE's learned relative bias, a dense [B, H, T, S] array.

  The counterpart of ``lengthgen.positional.fire.FireBias`` (the ``fire`` encoding's
  ``bias(num_heads, causal=...)``); defaults are the linen module's.

  Args:
    num_heads: H.
    bidirectional: the non-causal form: the distance is |i - j| and the MLP also sees the
      sign of j - i (its input is 2 wide instead of 1).
    hidden: the MLP's hidden width (32).
    c_init: the initial c (0.1).
    threshold_init: the initial threshold L (512.0).
    rngs: initializes the MLP (lecun-normal kernels, zero biases, as ``nn.Dense``).

  Attributes:
    c: ``nnx.Param`` float32 [] holding softplus^-1(c).
    threshold: ``nnx.Param`` float32 [] holding L up to its sign (|threshold| is used).
    hidden: ``nnx.Linear`` (1 or 2) -> hidden; ``out``: ``nnx.Linear`` hidden -> H.
  """

  def __init__(self, num_heads: int, bidirectional: bool = False, hidden: int = 32,
               c_init: float = 0.1, threshold_init: float = 512.0, *, rngs: nnx.Rngs):
    self.num_heads = num_heads
    self.bidirectional = bidirectional
    self.c = nnx.Param(jnp.full((), math.log(math.expm1(c_init)), jnp.float32))
    self.threshold = nnx.Param(jnp.full((), threshold_init, jnp.float32))
    self.hidden = nnx.Linear(2 if bidirectional else 1, hidden, rngs=rngs)
    self.out = nnx.Linear(hidden, num_heads, rngs=rngs)

  def __call__(self, q_positions_BT: jax.Array, k_positions_BS: jax.Array, *,
               train: bool = False) -> jax.Array:
    """The bias for queries at ``q_positions_BT`` and keys at ``k_positions_BS``.

    Args:
      q_positions_BT: int [B, T] query positions.
      k_positions_BS: int [B, S] key positions.
      train: unused.

    Returns:
      float32 [B, H, T, S], to pass as ``bias=`` to the attention.
    """
    del train
    x = linen_fire.fire_features(q_positions_BT, k_positions_BS, self.c[...],
                                 self.threshold[...], bidirectional=self.bidirectional)
    h = jax.nn.relu(self.hidden(x))
    return jnp.moveaxis(self.out(h), -1, 1)

  @classmethod
  def from_linen(cls, module: linen_fire.FireBias, params: Mapping[str, Any]) -> FireBias:
    """The nnx module equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen module, e.g. ``pe.get("fire").bias(4, causal=True)``.
      params: its parameters ``{"c": [], "threshold": [], "hidden": {"kernel", "bias"},
        "out": {"kernel", "bias"}}`` (or ``{"params": {...}}``).

    Raises:
      TypeError: ``module`` is not that linen module.
      ValueError: a parameter is missing or of another shape.
    """
    convert.check_linen_module(module, linen_fire.FireBias)
    return convert.build_from_linen(
        lambda rngs: cls(module.num_heads, module.bidirectional, module.hidden, module.c_init,
                         module.threshold_init, rngs=rngs), params)

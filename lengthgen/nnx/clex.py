"""CLEX (Chen et al. 2023) in ``flax.nnx``: RoPE frequencies from a learned ODE over the scale.

The module owns the ODE field's two matrices; the log-frequencies z(t) at t = 1..t_max come
from the shared ``lengthgen.positional.clex.solve_log_frequencies`` (diffrax) and the angles
from ``lengthgen.positional.rope.rope_angles``. Training draws the scale t from
{1..t_max} (from the module's "dropout" stream, or the ``rngs`` of the call) and multiplies
the positions by it; evaluation uses t = min(ceil(L / train_length), t_max) for L positions.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lengthgen.nnx import convert
from lengthgen.positional import clex as linen_clex
from lengthgen.positional.base import Rotation
from lengthgen.positional.rope import rope_angles


def _dropout_stream(rngs: nnx.Rngs | nnx.RngStream | None):
  if isinstance(rngs, nnx.Rngs):
    return rngs["dropout"].fork()
  if isinstance(rngs, nnx.RngStream):
    return rngs.fork()
  if rngs is None:
    return nnx.data(None)
  raise TypeError(f"rngs must be an nnx.Rngs, nnx.RngStream or None, got {type(rngs)}")


class ClexRotary(convert.LinenCounterpart):
  """CLEX's rotation of q and k, with a learned ODE field.

  The counterpart of ``lengthgen.positional.clex.ClexRotary`` (the ``clex`` encoding's
  ``rotary(head_dim)``); arguments as its fields, defaults as the ``Clex`` encoding's.

  Args:
    head_dim: D, even and > 2 (all of it rotates; F = D // 2 frequencies).
    base: the RoPE base (10000.0 in ``Clex``).
    t_max: the largest scale factor (4 in ``Clex``).
    train_length: the training length the scale is measured against (64 in ``Clex``).
    layout: "half" (GPT-NeoX) or "interleaved" (GPT-J).
    hidden_factor: the field's hidden width is ``hidden_factor * F``.
    log_scale_queries: multiply q by max(1, log L / log train_length).
    rngs: initializes ``w_up`` (lecun-normal; ``w_down`` starts at zero, so CLEX starts as
      NTK-aware scaling) and gives the "dropout" stream that draws t in training.

  Attributes:
    w_up: ``nnx.Param`` float32 [F, hidden_factor * F].
    w_down: ``nnx.Param`` float32 [hidden_factor * F, F].
  """

  def __init__(self, head_dim: int, base: float = 10000.0, t_max: int = 4,
               train_length: int = 64, layout: str = "half", hidden_factor: int = 2,
               log_scale_queries: bool = False, *, rngs: nnx.Rngs):
    self.head_dim = head_dim
    self.base = base
    self.t_max = t_max
    self.train_length = train_length
    self.layout = layout
    self.log_scale_queries = log_scale_queries
    f = head_dim // 2
    self.w_up = nnx.Param(
        nnx.initializers.lecun_normal()(rngs.params(), (f, hidden_factor * f), jnp.float32))
    self.w_down = nnx.Param(jnp.zeros((hidden_factor * f, f), jnp.float32))
    self.rngs = _dropout_stream(rngs)

  def __call__(self, positions_BT: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None) -> Rotation:
    """The rotation for ``positions_BT`` (one ODE solve per call).

    Args:
      positions_BT: int [B, T] positions; L = max position + 1 picks t at evaluation.
      train: draw t in {1..t_max} and scale the positions by it.
      rngs: in training, the key source (a key, an ``nnx.Rngs`` whose "dropout" stream is
        used, or an ``nnx.RngStream``); default: the module's stream.

    Returns:
      ``Rotation`` with float32 cos/sin [B, T, F], to apply to q [B, T, H, D] and k.
    """
    zs = linen_clex.solve_log_frequencies(self.w_up[...], self.w_down[...],
                                          head_dim=self.head_dim, base=self.base,
                                          t_max=self.t_max)
    # Choosing t, scaling the positions and the query scale are inline in the linen
    # module too; the ODE solve and the angles are the shared pure functions.
    length = jnp.max(positions_BT).astype(jnp.float32) + 1.0
    if train:
      t = jax.random.randint(self._key(rngs), (), 1, self.t_max + 1)
      positions_BT = positions_BT * t
    else:
      t = jnp.clip(jnp.ceil(length / self.train_length), 1, self.t_max).astype(jnp.int32)
    cos, sin = rope_angles(positions_BT, jnp.exp(zs[t - 1]))
    q_scale = 1.0
    if self.log_scale_queries:
      q_scale = jnp.maximum(1.0, jnp.log(length) / np.log(self.train_length))
    return Rotation(cos, sin, layout=self.layout, q_scale=q_scale)

  def _key(self, rngs) -> jax.Array:
    rngs = self.rngs if rngs is None else rngs
    if isinstance(rngs, nnx.Rngs):
      return rngs["dropout"]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    if isinstance(rngs, jax.Array):
      return rngs
    raise ValueError("ClexRotary(train=True) draws the scale t: pass rngs= to the call or "
                     "build the module with rngs")

  @classmethod
  def from_linen(cls, module: linen_clex.ClexRotary, params: Mapping[str, Any], *,
                 rngs: nnx.Rngs | nnx.RngStream | None = None) -> ClexRotary:
    """The nnx module equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen module, e.g. ``pe.get("clex", t_max=4).rotary(16)``.
      params: its parameters ``{"w_up": [F, hF], "w_down": [hF, F]}`` (or
        ``{"params": {...}}``).
      rngs: the stream that draws t in training (its "dropout" stream); None: pass ``rngs``
        to each training call.

    Raises:
      TypeError: ``module`` is not that linen module.
      ValueError: a parameter is missing or of another shape.
    """
    convert.check_linen_module(module, linen_clex.ClexRotary)
    out = convert.build_from_linen(
        lambda r: cls(module.head_dim, module.base, module.t_max, module.train_length,
                      module.layout, module.hidden_factor, module.log_scale_queries, rngs=r),
        params)
    out.rngs = _dropout_stream(rngs)
    return out

"""CLEX (Chen et al. 2023) in ``flax.nnx``: RoPE frequencies from a learned ODE over the scale.

The module owns the ODE field's two matrices and takes every option from a
``lengthgen.positional.Clex`` encoding; its rotation is the encoding's pure
``Clex.rotation`` (``clex_rotation``: the diffrax ODE solve, the scale t, the angles and the
query factor), the function the linen ``ClexRotary`` wraps too. See
``lengthgen.positional.clex`` for what ``training_positions`` and ``log_scale_queries`` mean.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
from flax import nnx

from lengthgen.nnx import convert
from lengthgen.positional import clex as linen_clex
from lengthgen.positional.base import Rotation


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

  The counterpart of ``lengthgen.positional.clex.ClexRotary``, the linen module of
  ``encoding.rotary(head_dim)``.

  Args:
    encoding: a ``lengthgen.positional.Clex`` (base, layout, t_max, train_length,
      hidden_factor, log_scale_queries, training_positions), e.g. ``pe.get("clex")``.
    head_dim: D, even and > 2 (all of it rotates; F = D // 2 frequencies).
    rngs: initializes the weights with ``encoding.init_params`` (``w_up`` lecun-normal,
      ``w_down`` zero, so CLEX starts as NTK-aware scaling) and gives the "dropout" stream that draws t in training with
      ``training_positions="multiply"``.

  Attributes:
    w_up: ``nnx.Param`` float32 [F, hidden_factor * F].
    w_down: ``nnx.Param`` float32 [hidden_factor * F, F].

  Raises:
    ValueError: ``head_dim`` is odd or <= 2 (``encoding.init_params`` checks it).
  """

  def __init__(self, encoding: linen_clex.Clex, head_dim: int, *, rngs: nnx.Rngs):
    initial = encoding.init_params(head_dim, rngs.params())  # checks head_dim
    self.encoding = encoding
    self.head_dim = head_dim
    self.w_up = nnx.Param(initial["w_up"])
    self.w_down = nnx.Param(initial["w_down"])
    self.rngs = _dropout_stream(rngs)

  def __call__(self, positions_BT: jax.Array, *, train: bool = False,
               rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None) -> Rotation:
    """The rotation for ``positions_BT`` (one ODE solve per call).

    Args:
      positions_BT: int [B, T] positions; L = max position + 1 picks t.
      train: training behaviour: t read back from the ``clex`` sampler's positions
        (``training_positions="sample"``) or drawn in {1..t_max} and multiplied into the
        positions (``"multiply"``).
      rngs: for ``"multiply"`` in training, the key source (a key, an ``nnx.Rngs`` whose
        "dropout" stream is used, or an ``nnx.RngStream``); default: the module's stream.

    Returns:
      ``Rotation`` with float32 cos/sin [B, T, F], to apply to q [B, T, H, D] and k.
    """
    e = self.encoding
    rng = self._key(rngs) if train and e.training_positions == "multiply" else None
    return e.rotation(self.head_dim, positions_BT, train=train, rng=rng,
                      params={"w_up": self.w_up[...], "w_down": self.w_down[...]})

  def _key(self, rngs) -> jax.Array:
    rngs = self.rngs if rngs is None else rngs
    if isinstance(rngs, nnx.Rngs):
      return rngs["dropout"]()
    if isinstance(rngs, nnx.RngStream):
      return rngs()
    if isinstance(rngs, jax.Array):
      return rngs
    raise ValueError("ClexRotary(train=True) with training_positions='multiply' draws the "
                     "scale t: pass rngs= to the call or build the module with rngs")

  @classmethod
  def from_linen(cls, module: linen_clex.ClexRotary, params: Mapping[str, Any], *,
                 rngs: nnx.Rngs | nnx.RngStream | None = None) -> ClexRotary:
    """The nnx module equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen module, e.g. ``pe.get("clex", t_max=4).rotary(16)``; its fields
        become the ``Clex`` encoding's options.
      params: its parameters ``{"w_up": [F, hF], "w_down": [hF, F]}`` (or
        ``{"params": {...}}``).
      rngs: the stream that draws t in training with ``training_positions="multiply"``
        (its "dropout" stream); None: pass ``rngs`` to such calls.

    Raises:
      TypeError: ``module`` is not that linen module.
      ValueError: a parameter is missing or of another shape.
    """
    convert.check_linen_module(module, linen_clex.ClexRotary)
    encoding = linen_clex.Clex(**{f.name: getattr(module, f.name)
                                  for f in dataclasses.fields(linen_clex.Clex)
                                  if hasattr(module, f.name)})
    out = convert.build_from_linen(lambda r: cls(encoding, module.head_dim, rngs=r), params)
    out.rngs = _dropout_stream(rngs)
    return out

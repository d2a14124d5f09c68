"""Learned absolute position embeddings (GPT-2) and Abacus embeddings, in ``flax.nnx``.

Both are one trainable [max_length, W] table: ``learned`` looks up each token's position,
Abacus (McLeish et al. 2024) each digit's index within its number
(``lengthgen.positional.abacus_positions``), as the linen ``Learned`` and ``Abacus``
encodings both build ``lengthgen.positional.absolute.LearnedEmbedding``.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from lengthgen.nnx import convert
from lengthgen.positional import absolute as linen_absolute


class LearnedEmbedding(convert.LinenCounterpart):
  """A trainable position table; positions outside it give NaN (never wrapped or clamped).

  The counterpart of ``lengthgen.positional.absolute.LearnedEmbedding`` (the linen module of
  the ``learned`` and ``abacus`` encodings).

  Args:
    max_length: rows of the table; valid positions are 0 .. max_length - 1.
    width: W, the embedding width.
    rngs: draws the float32 table from normal(0.02), as the linen module does.

  Attributes:
    table: ``nnx.Param`` float32 [max_length, W].
  """

  def __init__(self, max_length: int, width: int, *, rngs: nnx.Rngs):
    self.max_length = max_length
    self.width = width
    self.table = nnx.Param(
        nnx.initializers.normal(0.02)(rngs.params(), (max_length, width), jnp.float32))

  def __call__(self, positions_BT: jax.Array, *, train: bool = False) -> jax.Array:
    """Embeds positions.

    Args:
      positions_BT: int [B, T] positions (Abacus: ``abacus_positions`` of the tokens).
      train: unused (the table is the same in training and evaluation).

    Returns:
      [B, T, W] in the table's dtype; rows of positions outside [0, max_length) are NaN.
    """
    del train
    return linen_absolute.learned_lookup(self.table[...], positions_BT)

  @classmethod
  def from_linen(cls, module: linen_absolute.LearnedEmbedding,
                 params: Mapping[str, Any]) -> LearnedEmbedding:
    """The nnx module equal to the linen ``module`` with parameters ``params``.

    Args:
      module: the linen module (its ``max_length`` and ``width``), e.g.
        ``pe.get("learned", max_length=64).embedding(32)``.
      params: its parameters, ``{"table": [max_length, W]}`` (or ``{"params": {...}}``).

    Raises:
      TypeError: ``module`` is not that linen module.
      ValueError: the table is missing or of another shape.
    """
    convert.check_linen_module(module, linen_absolute.LearnedEmbedding)
    return convert.build_from_linen(
        lambda rngs: cls(module.max_length, module.width, rngs=rngs), params)

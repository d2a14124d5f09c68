"""The three hooks through which a positional encoding acts, and NoPE.

An encoding is a frozen dataclass whose methods build (or decline to build) one Flax
module per hook. The model calls them once, with explicit positions, and never looks at
the encoding's name:

* ``embedding(width)``  -> module ``(positions_BT, *, train) -> [B, T, width]`` added to
  the token embeddings (sinusoidal, learned, Abacus);
* ``rotary(head_dim)`` -> module ``(positions_BT, *, train) -> Rotation`` applied to q and k
  in every layer (RoPE and its scaled forms, CLEX);
* ``bias(num_heads, causal=...)`` -> module ``(q_positions_BT, k_positions_BS, *, train) ->
  bias spec`` added to the attention scores (ALiBi, T5, FIRE). With ``share_bias`` the
  model builds it once and every layer uses it; otherwise each layer owns one.

Any hook may return ``None``. NoPE returns ``None`` from all three.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from lengthgen.positional.rotary import rotate


@flax.struct.dataclass
class Rotation:
  """Precomputed rotary angles for a [B, T] grid of positions.

  Attributes:
    cos_BTF, sin_BTF: float32 [B, T, F] with F = rotary_dim // 2 frequencies.
    layout: "half" (GPT-NeoX: dims i and i + F pair up) or "interleaved" (GPT-J: 2i, 2i+1).
    q_scale: factor applied to q after rotation (YaRN's attention factor, CLEX's log-length
      scaling; a float or a scalar array; 1.0 otherwise).
  """

  cos_BTF: jax.Array
  sin_BTF: jax.Array
  layout: str = flax.struct.field(pytree_node=False, default="half")
  q_scale: float | jax.Array = 1.0

  def apply(self, x_BTHD: jax.Array, *, is_query: bool) -> jax.Array:
    out = rotate(x_BTHD, self.cos_BTF, self.sin_BTF, layout=self.layout)
    if is_query and not (isinstance(self.q_scale, float) and self.q_scale == 1.0):
      out = out * jnp.asarray(self.q_scale, out.dtype)
    return out


@dataclasses.dataclass(frozen=True)
class Encoding:
  """Base class: an encoding that does nothing (NoPE). Subclasses override hooks."""

  share_bias: bool = False

  name = "nope"
  default_positions = "contiguous"   # the position sampler used when the config says "default"

  def embedding(self, width: int) -> nn.Module | None:
    del width
    return None

  def rotary(self, head_dim: int) -> nn.Module | None:
    del head_dim
    return None

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module | None:
    del num_heads, causal
    return None

  def position_limit(self) -> int | None:
    """Positions must stay below this (a learned table's size); None if unbounded."""
    return None

  def check_positions(self, max_position: int) -> None:
    """Raises ``ValueError`` if ``max_position`` is beyond what the encoding supports."""
    limit = self.position_limit()
    if limit is not None and max_position >= limit:
      raise ValueError(
          f"positional encoding {self.name!r} supports positions below {limit}; got position "
          f"{max_position}. Raise its max_length option or choose a relative encoding.")


@dataclasses.dataclass(frozen=True)
class NoPE(Encoding):
  """No positional information: causal masking alone must carry position (Kazemnejad et al. 2023)."""

  name = "nope"


def options_of(encoding: Encoding) -> dict[str, Any]:
  """The encoding's options as a plain dict (for config.json and results)."""
  return dataclasses.asdict(encoding)

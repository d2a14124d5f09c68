"""Rotary position embeddings (Su et al. 2021, RoFormer).

Each pair of channels (x_a, x_b) of q and k is rotated by the angle p * inv_freq[i] with
inv_freq[i] = base^(-2i/d), so q.k depends on positions only through their difference.
``layout="half"`` pairs channel i with i + d/2 (GPT-NeoX); ``"interleaved"`` pairs 2i with
2i + 1 (GPT-J). ``fraction`` < 1 rotates only the first ``fraction * d`` channels (partial
rotary; Kazemnejad et al. 2023 used 25%). Angles are always computed in float32: bfloat16
positions or angles lose relative position at long lengths.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.positional.base import Encoding, Rotation, capped_positions, check_no_params
from lengthgen.positional.rotary import LAYOUTS, check_positions, rotate

__all__ = ["FixedRotary", "LAYOUTS", "Rope", "apply_rope", "fixed_rotation", "rope_angles",
           "rope_inv_frequencies", "rotary_dims", "rotate"]


def rope_inv_frequencies(head_dim: int, *, base: float = 10000.0) -> np.ndarray:
  """inv_freq[i] = base^(-2i / head_dim) for i < head_dim // 2, float32."""
  if head_dim % 2:
    raise ValueError(f"RoPE needs an even number of rotated dims, got {head_dim}")
  i = np.arange(head_dim // 2, dtype=np.float64)
  return (base ** (-2.0 * i / head_dim)).astype(np.float32)


def rope_angles(positions_BT: jax.Array, inv_freq_F: jax.Array) -> tuple[jax.Array, jax.Array]:
  """cos and sin of positions [B, T] * inv_freq [F], float32 [B, T, F] (positions cast to float32)."""
  angles = positions_BT.astype(jnp.float32)[..., None] * jnp.asarray(inv_freq_F, jnp.float32)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x_BTHD: jax.Array, positions_BT: jax.Array, inv_freq: jax.Array, *,
               layout: str = "half") -> jax.Array:
  """Rotates x by positions * inv_freq alone; angles in float32 whatever x's dtype.

  Only the angles: an encoding's attention factor (YaRN), its layout and its length-dependent
  or learned frequencies are not applied here. ``Encoding.rotate_qk`` applies all of them.

  Args:
    x_BTHD: [B, T, H, D] queries or keys.
    positions_BT: [B or 1, T] positions.
    inv_freq: [F] inverse frequencies, 2F <= D (the first 2F channels rotate).
    layout: ``"half"`` (default) or ``"interleaved"``.

  Returns:
    [B, T, H, D] in x's dtype.
  """
  check_positions(x_BTHD, positions_BT)
  cos, sin = rope_angles(positions_BT, inv_freq)
  return rotate(x_BTHD, cos, sin, layout=layout)


def rotary_dims(head_dim: int, fraction: float) -> int:
  """Number of rotated channels: fraction * head_dim rounded down to an even number (>= 2)."""
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"rotary fraction must be in (0, 1], got {fraction}")
  return max(2, int(head_dim * fraction) // 2 * 2)


def fixed_rotation(positions_BT: jax.Array, inv_freq_F, *, layout: str = "half",
                   q_scale: float = 1.0) -> Rotation:
  """The ``Rotation`` of fixed inverse frequencies at ``positions_BT``; pure.

  Args:
    positions_BT: [B, T] positions.
    inv_freq_F: [F] inverse frequencies (cast to float32).
    layout: ``"half"`` (default) or ``"interleaved"``.
    q_scale: factor on q after rotation (default 1.0: none).

  Returns:
    A ``Rotation`` with float32 cos/sin [B, T, F].
  """
  cos, sin = rope_angles(positions_BT, jnp.asarray(inv_freq_F, jnp.float32))
  return Rotation(cos, sin, layout=layout, q_scale=q_scale)


class FixedRotary(nn.Module):
  """Rotary angles from fixed inverse frequencies (no parameters): ``fixed_rotation``.

  Called with ``capped_at=window`` it returns ``(rotation, capped)``: the rotation at the
  positions and LM-Infinite's capped-query rotation (every position at ``window``), both with
  the length and random draw of the positions (the pair ``Encoding.rotate_qk`` /
  ``capped_query`` compute).
  """

  inv_freq: tuple[float, ...]
  layout: str = "half"
  q_scale: float = 1.0

  def __call__(self, positions_BT: jax.Array, *, train: bool = False, capped_at=None):
    del train
    rotate = lambda p: fixed_rotation(p, self.inv_freq, layout=self.layout,
                                      q_scale=self.q_scale)
    if capped_at is None:
      return rotate(positions_BT)
    return rotate(positions_BT), rotate(capped_positions(positions_BT, capped_at))


@dataclasses.dataclass(frozen=True)
class Rope(Encoding):
  """RoPE (Su et al. 2021) with NeoX or GPT-J layout and optional partial rotary."""

  base: float = 10000.0
  layout: str = "half"
  fraction: float = 1.0
  truncate_below: float | None = None   # Giraffe: frequencies below this are clamped ...
  zero_below: float | None = None       # ... and those at or below this are zeroed
  clamp_value: float | None = None      # the clamped value (default: zero_below, else 0)
  name = "rope"

  def __post_init__(self):
    a, b = self.zero_below, self.truncate_below
    if (a is not None and a < 0) or (b is not None and b <= 0) or (
        a is not None and b is not None and a > b):
      raise ValueError(f"{self.name}: need 0 <= zero_below <= truncate_below; got "
                       f"zero_below={a}, truncate_below={b}")
    if self.layout not in LAYOUTS:
      raise ValueError(f"rope: unknown layout {self.layout!r}; valid: {', '.join(LAYOUTS)}")
    if not 0.0 < self.fraction <= 1.0:
      raise ValueError(f"rope: fraction must be in (0, 1], got {self.fraction}")
    if self.base <= 1.0:
      raise ValueError(f"rope: base must be > 1, got {self.base}")

  def inv_frequencies(self, head_dim: int) -> np.ndarray:
    return self.truncate(rope_inv_frequencies(rotary_dims(head_dim, self.fraction),
                                              base=self.base))

  def truncate(self, inv_freq: np.ndarray) -> np.ndarray:
    """Giraffe's truncated basis: theta if theta >= b; rho if a < theta < b; 0 if theta <= a."""
    a, b = self.zero_below, self.truncate_below
    if a is None and b is None:
      return inv_freq
    out = inv_freq.astype(np.float64)
    if b is not None:
      rho = self.clamp_value if self.clamp_value is not None else (a or 0.0)
      out = np.where(out < b, rho, out)
    if a is not None:
      out = np.where(inv_freq <= a, 0.0, out)
    return out.astype(np.float32)

  def query_scale(self) -> float:
    """The factor q carries after rotation (1.0; YaRN overrides it)."""
    return 1.0

  def rotary(self, head_dim: int) -> nn.Module:
    return FixedRotary(tuple(float(f) for f in self.inv_frequencies(head_dim)), self.layout,
                       q_scale=self.query_scale())

  def rotation(self, head_dim: int, positions_BT: jax.Array, *, length=None,
               train: bool = False, rng=None, params=None) -> Rotation:
    """Pure rotary hook (see ``Encoding.rotation``): fixed frequencies, no length or rng."""
    del length, train, rng
    check_no_params(self.name, params)
    return fixed_rotation(positions_BT, self.inv_frequencies(head_dim), layout=self.layout,
                          q_scale=self.query_scale())

"""Rotation of q and k channel pairs by precomputed angles (shared by ``base`` and ``rope``).

``layout="half"`` pairs channel i with i + F (GPT-NeoX); ``"interleaved"`` pairs 2i with
2i + 1 (GPT-J). Only the first 2F channels rotate; the rest pass through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LAYOUTS = ("half", "interleaved")


def check_positions(x_BTHD, positions_BT, x_name: str = "x_BTHD",
                    positions_name: str = "positions_BT") -> None:
  """Raises ``ValueError`` unless x is [B, T, H, D] and positions [B or 1, T] match it.

  Only shapes are read (nothing is computed). A [B, H, T, D] tensor passes only when H == T:
  then nothing can tell the two layouts apart.
  """
  check_grid(jnp.shape(x_BTHD), jnp.shape(positions_BT), x_name, positions_name)


def check_grid(x_shape, grid_shape, x_name: str, grid_name: str) -> None:
  """``check_positions`` on shapes: ``x_shape`` [B, T, H, D], ``grid_shape`` [B or 1, T]."""
  x_shape, grid_shape = tuple(x_shape), tuple(grid_shape)
  if len(x_shape) != 4:
    raise ValueError(f"{x_name} must be [B, T, H, D] (4 axes), got shape {x_shape}")
  b, t = x_shape[:2]
  if len(grid_shape) != 2 or grid_shape[1] != t or grid_shape[0] not in (1, b):
    hint = (f"; is {x_name} [B, H, T, D]? expected [B, T, H, D]"
            if len(grid_shape) == 2 and grid_shape[1] == x_shape[2] else "")
    raise ValueError(f"{grid_name} must be [B, T] = [{b} or 1, {t}] to match {x_name} of "
                     f"shape {x_shape}; got shape {grid_shape}{hint}")


def rotate(x_BTHD: jax.Array, cos_BTF: jax.Array, sin_BTF: jax.Array, *,
           layout: str = "half") -> jax.Array:
  """Rotates the first 2F channels of x by the given angles; the rest pass through.

  Args:
    x_BTHD: [B, T, H, D] queries or keys, any float dtype.
    cos_BTF, sin_BTF: [B or 1, T, F] cos and sin of the angles (float32), 2F <= D.
    layout: ``"half"`` (default) or ``"interleaved"``, see the module docstring.

  Returns:
    [B, T, H, D] in x's dtype (the rotation itself is computed in float32).
  """
  if layout not in LAYOUTS:
    raise ValueError(f"unknown RoPE layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
  if jnp.shape(cos_BTF) != jnp.shape(sin_BTF) or len(jnp.shape(cos_BTF)) != 3:
    raise ValueError(f"cos_BTF and sin_BTF must both be [B, T, F]; got shapes "
                     f"{jnp.shape(cos_BTF)} and {jnp.shape(sin_BTF)}")
  check_grid(jnp.shape(x_BTHD), jnp.shape(cos_BTF)[:2], "x_BTHD", "the angles' [B, T]")
  f = cos_BTF.shape[-1]
  d = x_BTHD.shape[-1]
  if 2 * f > d:
    raise ValueError(f"{f} rotary frequencies need at least {2 * f} head dims, got {d}")
  xr = x_BTHD[..., :2 * f].astype(jnp.float32)
  cos, sin = cos_BTF[:, :, None, :], sin_BTF[:, :, None, :]
  if layout == "half":
    x1, x2 = xr[..., :f], xr[..., f:]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  else:
    x1, x2 = xr[..., 0::2], xr[..., 1::2]
    out = jnp.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).reshape(xr.shape)
  out = out.astype(x_BTHD.dtype)
  if 2 * f == d:
    return out
  return jnp.concatenate([out, x_BTHD[..., 2 * f:]], axis=-1)

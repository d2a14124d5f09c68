"""Rotation of q and k channel pairs by precomputed angles (shared by ``base`` and ``rope``).

``layout="half"`` pairs channel i with i + F (GPT-NeoX); ``"interleaved"`` pairs 2i with
2i + 1 (GPT-J). Only the first 2F channels rotate; the rest pass through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LAYOUTS = ("half", "interleaved")


def rotate(x_BTHD: jax.Array, cos_BTF: jax.Array, sin_BTF: jax.Array, *,
           layout: str = "half") -> jax.Array:
  """Rotates the first 2F channels of x by the given angles; the rest pass through."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown RoPE layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
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

"""CLEX (Chen et al. 2023): continuous length extrapolation of RoPE by a neural ODE.

The log-frequencies z(t) of RoPE are a function of the scale factor t, integrated from
z(1) = log theta (plain RoPE) by

    dz/dt = W_down tanh(W_up (z + log theta_NTK(t))) + d log theta_NTK(t) / dt,

where theta_NTK(t) are the NTK-aware frequencies at alpha = 2t - 1. W_down starts at zero, so
at initialization z(t) = log theta_NTK(t): CLEX begins as NTK-aware scaling and learns to
correct it. The ODE is solved over t (not over positions) with diffrax, once per forward pass
over [1, t_max], saving the integer t's.

Training samples t uniformly from {1..t_max} per batch (from the "dropout" rng stream) and
multiplies the positions by t, so they span t times the training length; evaluation uses
t = min(ceil(L / train_length), t_max) for a sequence of L positions. With
``log_scale_queries`` q is multiplied by max(1, log L / log train_length).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.positional.base import Encoding, Rotation
from lengthgen.positional.rope import rope_angles, rope_inv_frequencies
from lengthgen.positional.rotary import LAYOUTS


def ntk_log_frequencies(t, head_dim: int, base: float) -> jax.Array:
  """log theta_NTK(t): log of the NTK-aware frequencies at alpha = 2t - 1, [head_dim // 2]."""
  i = jnp.arange(head_dim // 2, dtype=jnp.float32)
  alpha = 2.0 * t - 1.0
  return -(2.0 * i / head_dim) * (jnp.log(base) + head_dim / (head_dim - 2) * jnp.log(alpha))


def ntk_log_frequency_rate(t, head_dim: int) -> jax.Array:
  """d log theta_NTK(t) / dt."""
  i = jnp.arange(head_dim // 2, dtype=jnp.float32)
  return -(2.0 * i / head_dim) * (head_dim / (head_dim - 2)) * 2.0 / (2.0 * t - 1.0)


def solve_log_frequencies(w_up, w_down, *, head_dim: int, base: float, t_max: int):
  """z(t) at t = 1..t_max, float32 [t_max, head_dim // 2]."""
  import diffrax  # pylint: disable=import-outside-toplevel  (heavy: imported on first solve)
  z0 = jnp.log(jnp.asarray(rope_inv_frequencies(head_dim, base=base)))
  if t_max == 1:
    return z0[None]

  def field(t, z, args):
    del args
    log_ntk = ntk_log_frequencies(t, head_dim, base)
    return jnp.tanh((z + log_ntk) @ w_up) @ w_down + ntk_log_frequency_rate(t, head_dim)

  ts = jnp.arange(1, t_max + 1, dtype=jnp.float32)
  sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), t0=1.0, t1=float(t_max),
                            dt0=0.1, y0=z0, saveat=diffrax.SaveAt(ts=ts),
                            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6))
  return sol.ys


class ClexRotary(nn.Module):
  head_dim: int
  base: float
  t_max: int
  train_length: int
  layout: str = "half"
  hidden_factor: int = 2
  log_scale_queries: bool = False

  @nn.compact
  def __call__(self, positions_BT: jax.Array, *, train: bool = False) -> Rotation:
    f = self.head_dim // 2
    w_up = self.param("w_up", nn.initializers.lecun_normal(), (f, self.hidden_factor * f))
    w_down = self.param("w_down", nn.initializers.zeros, (self.hidden_factor * f, f))
    zs = solve_log_frequencies(w_up, w_down, head_dim=self.head_dim, base=self.base,
                               t_max=self.t_max)
    length = jnp.max(positions_BT).astype(jnp.float32) + 1.0
    if train:
      t = jax.random.randint(self.make_rng("dropout"), (), 1, self.t_max + 1)
      positions_BT = positions_BT * t
    else:
      t = jnp.clip(jnp.ceil(length / self.train_length), 1, self.t_max).astype(jnp.int32)
    cos, sin = rope_angles(positions_BT, jnp.exp(zs[t - 1]))
    q_scale = 1.0
    if self.log_scale_queries:
      q_scale = jnp.maximum(1.0, jnp.log(length) / np.log(self.train_length))
    return Rotation(cos, sin, layout=self.layout, q_scale=q_scale)


@dataclasses.dataclass(frozen=True)
class Clex(Encoding):
  """CLEX neural-ODE frequency scaling of RoPE (Chen et al. 2023)."""

  base: float = 10000.0
  layout: str = "half"
  t_max: int = 4
  train_length: int = 64
  hidden_factor: int = 2
  log_scale_queries: bool = False
  name = "clex"

  def __post_init__(self):
    if self.layout not in LAYOUTS:
      raise ValueError(f"clex: unknown layout {self.layout!r}; valid: {', '.join(LAYOUTS)}")
    if self.t_max < 1 or self.train_length < 1 or self.hidden_factor < 1:
      raise ValueError(f"clex: t_max, train_length and hidden_factor must be >= 1; got "
                       f"{self.t_max}, {self.train_length}, {self.hidden_factor}")

  def rotary(self, head_dim: int) -> nn.Module:
    if head_dim <= 2 or head_dim % 2:
      raise ValueError(f"clex needs an even head_dim > 2, got {head_dim}")
    return ClexRotary(head_dim, self.base, self.t_max, self.train_length, self.layout,
                      self.hidden_factor, self.log_scale_queries)

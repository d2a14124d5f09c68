"""CLEX (Chen et al. 2023): continuous length extrapolation of RoPE by a neural ODE.

The log-frequencies z(t) of RoPE are a function of the scale factor t, integrated from
z(1) = log theta (plain RoPE) by

    dz/dt = W_down tanh(W_up (z + log theta_NTK(t))) + d log theta_NTK(t) / dt,

where theta_NTK(t) are the NTK-aware frequencies at alpha = 2t - 1. W_down starts at zero, so
at initialization z(t) = log theta_NTK(t): CLEX begins as NTK-aware scaling and learns to
correct it. The ODE is solved over t (not over positions) with diffrax, once per forward pass
over [1, t_max], saving the integer t's.

Training (``training_positions``):

* ``"sample"`` (default; the authors' ``CLEXScalingRotaryEmbedding.forward`` in
  DAMO-NLP-SG/CLEX ``CLEX/clex_layer.py``): the ``clex`` position sampler draws t uniformly
  from {1..t_max} per batch and a sorted random subset of T positions of [0, T t) that keeps
  0 and T t - 1 (T = the batch's token count), the same for every example; the rotary reads t
  back as ceil((max position + 1) / T), clipped to [1, t_max]. At t = 1 the positions are
  0..T-1.
* ``"multiply"``: positions 0..T-1 (the ``contiguous`` sampler) multiplied by a t drawn in the
  rotary from the "dropout" rng stream, so they span t times their length.

Evaluation uses t = min(ceil(L / train_length), t_max) for L = max position + 1 (the number
of tokens, for contiguous positions), as the authors do.

Query scaling (``log_scale_queries``) multiplies q after rotation by ln L / ln train_length:

* ``"eval"`` (default; the authors' ``log_scale``, applied in their LLaMA flash-attention
  path with L their ``kv_seq_len``): at evaluation only, unclamped (below 1 when L <
  train_length); their training script turns it off and their evaluation script on;
* ``"clamped"``: max(1, ln L / ln train_length), at training and at evaluation;
* ``"none"``: q is not scaled.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.positional.base import Encoding, Rotation, capped_positions, default_length
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
  z0 = jnp.log(jnp.asarray(rope_inv_frequencies(head_dim, base=base)))
  if t_max == 1:
    return z0[None]
  import diffrax  # pylint: disable=import-outside-toplevel  (heavy: imported on first solve)

  def field(t, z, args):
    del args
    log_ntk = ntk_log_frequencies(t, head_dim, base)
    return jnp.tanh((z + log_ntk) @ w_up) @ w_down + ntk_log_frequency_rate(t, head_dim)

  ts = jnp.arange(1, t_max + 1, dtype=jnp.float32)
  sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), t0=1.0, t1=float(t_max),
                            dt0=0.1, y0=z0, saveat=diffrax.SaveAt(ts=ts),
                            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6))
  return sol.ys


TRAINING_POSITIONS = ("sample", "multiply")
LOG_SCALE_QUERIES = ("eval", "clamped", "none")


def clex_scale_factor(length, *, divisor: int, t_max: int) -> jax.Array:
  """t = ceil(length / divisor) clipped to [1, t_max], int32: the scale whose frequencies serve
  a sequence of ``length`` positions (``divisor``: train_length at evaluation, the token count
  T for the ``clex`` sampler's training positions)."""
  return jnp.clip(jnp.ceil(length / divisor), 1, t_max).astype(jnp.int32)


def clex_query_scale(length, *, train_length: int, mode: str, train: bool):
  """The factor on q: ln L / ln train_length as ``mode`` says (see the module docstring)."""
  if mode == "none" or (mode == "eval" and train):
    return 1.0
  ratio = jnp.log(length) / np.log(train_length)
  return ratio if mode == "eval" else jnp.maximum(1.0, ratio)


def clex_rotation(positions_BT: jax.Array, w_up, w_down, *, head_dim: int, base: float,
                  t_max: int, train_length: int, layout: str = "half",
                  log_scale_queries: str = "eval", training_positions: str = "sample",
                  length=None, train: bool = False, rng: jax.Array | None = None) -> Rotation:
  """CLEX's rotation at ``positions_BT`` from the ODE field's weights; pure.

  Args:
    positions_BT: [B, T] positions.
    w_up: float32 [F, hidden_factor * F] and ``w_down`` [hidden_factor * F, F], F = D // 2:
      the ODE field's learned weights (``ClexRotary``'s ``w_up`` and ``w_down``).
    head_dim, base, t_max, train_length, layout, log_scale_queries, training_positions: the
      ``Clex`` options (see the module docstring).
    length: the sequence length L that picks t at evaluation and scales q (number or scalar
      array); default ``max(positions_BT) + 1``.
    train: training-time t: drawn (``"multiply"``) or read back from the ``clex`` sampler's
      positions as ceil(L / T) with T = ``positions_BT.shape[-1]`` (``"sample"``).
    rng: ``jax.random`` key for the drawn t; needed when ``train`` with ``"multiply"``.

  Returns:
    A ``Rotation``: float32 cos/sin [B, T, F], q_scale from ``clex_query_scale``.
  """
  if train and training_positions == "multiply" and rng is None:
    raise ValueError("clex with training_positions='multiply' draws t in training: pass "
                     "rng (a jax.random key) when train=True")
  zs = solve_log_frequencies(w_up, w_down, head_dim=head_dim, base=base, t_max=t_max)
  length = default_length(positions_BT) if length is None else jnp.asarray(length,
                                                                             jnp.float32)
  if train and training_positions == "multiply":
    t = jax.random.randint(rng, (), 1, t_max + 1)
    positions_BT = positions_BT * t
  elif train:  # the clex sampler's positions span T * t
    t = clex_scale_factor(length, divisor=positions_BT.shape[-1], t_max=t_max)
  else:
    t = clex_scale_factor(length, divisor=train_length, t_max=t_max)
  cos, sin = rope_angles(positions_BT, jnp.exp(zs[t - 1]))
  q_scale = clex_query_scale(length, train_length=train_length, mode=log_scale_queries,
                             train=train)
  return Rotation(cos, sin, layout=layout, q_scale=q_scale)


class ClexRotary(nn.Module):
  """CLEX's rotary hook: owns ``w_up`` and ``w_down``, computes ``clex_rotation``.

  Called with ``capped_at=window`` it returns ``(rotation, capped)``: the rotation at the
  positions and LM-Infinite's capped-query rotation (every position at ``window``), both with
  the length and random draw of the positions (the pair ``Encoding.rotate_qk`` /
  ``capped_query`` compute).
  """

  head_dim: int
  base: float
  t_max: int
  train_length: int
  layout: str = "half"
  hidden_factor: int = 2
  log_scale_queries: str = "eval"
  training_positions: str = "sample"

  @nn.compact
  def __call__(self, positions_BT: jax.Array, *, train: bool = False, capped_at=None):
    f = self.head_dim // 2
    w_up = self.param("w_up", nn.initializers.lecun_normal(), (f, self.hidden_factor * f))
    w_down = self.param("w_down", nn.initializers.zeros, (self.hidden_factor * f, f))
    rng = (self.make_rng("dropout") if train and self.training_positions == "multiply"
           else None)
    length = default_length(positions_BT)
    rotate = lambda p: clex_rotation(
        p, w_up, w_down, head_dim=self.head_dim, base=self.base, t_max=self.t_max,
        train_length=self.train_length, layout=self.layout,
        log_scale_queries=self.log_scale_queries, training_positions=self.training_positions,
        length=length, train=train, rng=rng)
    if capped_at is None:
      return rotate(positions_BT)
    return rotate(positions_BT), rotate(capped_positions(positions_BT, capped_at))


@dataclasses.dataclass(frozen=True)
class Clex(Encoding):
  """CLEX neural-ODE frequency scaling of RoPE (Chen et al. 2023); see the module docstring
  for ``training_positions`` and ``log_scale_queries``."""

  base: float = 10000.0
  layout: str = "half"
  t_max: int = 4
  train_length: int = 64
  hidden_factor: int = 2
  log_scale_queries: str = "eval"
  training_positions: str = "sample"
  name = "clex"

  def __post_init__(self):
    if self.layout not in LAYOUTS:
      raise ValueError(f"clex: unknown layout {self.layout!r}; valid: {', '.join(LAYOUTS)}")
    if self.t_max < 1 or self.train_length < 1 or self.hidden_factor < 1:
      raise ValueError(f"clex: t_max, train_length and hidden_factor must be >= 1; got "
                       f"{self.t_max}, {self.train_length}, {self.hidden_factor}")
    if self.training_positions not in TRAINING_POSITIONS:
      raise ValueError(f"clex: unknown training_positions {self.training_positions!r}; "
                       f"valid: {', '.join(TRAINING_POSITIONS)}")
    if self.log_scale_queries not in LOG_SCALE_QUERIES:
      raise ValueError(f"clex: unknown log_scale_queries {self.log_scale_queries!r}; "
                       f"valid: {', '.join(LOG_SCALE_QUERIES)}")
    if self.log_scale_queries != "none" and self.train_length < 2:
      raise ValueError(f"clex: log_scale_queries={self.log_scale_queries!r} divides by "
                       f"ln(train_length) and needs train_length >= 2, got {self.train_length}")

  @property
  def default_positions(self) -> str:
    return "clex" if self.training_positions == "sample" else "contiguous"

  def default_positions_options(self) -> dict:
    return {"t_max": self.t_max} if self.training_positions == "sample" else {}

  def rotary(self, head_dim: int) -> nn.Module:
    if head_dim <= 2 or head_dim % 2:
      raise ValueError(f"clex needs an even head_dim > 2, got {head_dim}")
    return ClexRotary(head_dim, self.base, self.t_max, self.train_length, self.layout,
                      self.hidden_factor, self.log_scale_queries, self.training_positions)

  def init_params(self, head_dim: int, key: jax.Array) -> dict[str, jax.Array]:
    """Initial ODE weights for ``rotation`` / ``rotate_qk`` (plain JAX).

    Args:
      head_dim: D (even, > 2).
      key: a ``jax.random`` key.

    Returns:
      {"w_up": float32 [F, hidden_factor * F] lecun-normal, "w_down": float32
      [hidden_factor * F, F] zeros}, F = D // 2: the linen module's initializers (not its
      draws), so CLEX starts as NTK-aware scaling.
    """
    self.rotary(head_dim)  # checks head_dim
    f = head_dim // 2
    return {"w_up": nn.initializers.lecun_normal()(key, (f, self.hidden_factor * f)),
            "w_down": jnp.zeros((self.hidden_factor * f, f), jnp.float32)}

  def rotation(self, head_dim: int, positions_BT: jax.Array, *, length=None,
               train: bool = False, rng=None, params=None) -> Rotation:
    """Pure rotary hook (see ``Encoding.rotation``), the ODE weights given as ``params``.

    ``params``: {"w_up": [F, hidden_factor * F], "w_down": [hidden_factor * F, F]}, the
    ``rotary`` module's parameters or ``init_params``. ``rng`` is needed to train with
    ``training_positions="multiply"``; in training with ``"sample"`` t is read back from the
    positions, so pass those of the whole training sequence.
    """
    self.rotary(head_dim)  # checks head_dim
    f, hidden = head_dim // 2, self.hidden_factor * (head_dim // 2)
    want = {"w_up": (f, hidden), "w_down": (hidden, f)}
    if params is None or set(params) != set(want):
      raise ValueError(f"clex: params must be the ODE weights {{'w_up': {want['w_up']}, "
                       f"'w_down': {want['w_down']}}} (Clex.init_params, or the rotary "
                       f"module's parameters); got {None if params is None else sorted(params)}")
    for name, shape in want.items():
      if tuple(jnp.shape(params[name])) != shape:
        raise ValueError(f"clex: params[{name!r}] must have shape {shape} for head_dim "
                         f"{head_dim}, got {tuple(jnp.shape(params[name]))}")
    return clex_rotation(positions_BT, params["w_up"], params["w_down"], head_dim=head_dim,
                         base=self.base, t_max=self.t_max, train_length=self.train_length,
                         layout=self.layout, log_scale_queries=self.log_scale_queries,
                         training_positions=self.training_positions, length=length,
                         train=train, rng=rng)

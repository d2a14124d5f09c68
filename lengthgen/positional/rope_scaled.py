"""Context-extension forms of RoPE: position interpolation, NTK-aware base, YaRN.

* ``rope_pi`` (Chen et al. 2023, Position Interpolation): positions divided by ``scale``,
  i.e. every frequency divided by ``scale``.
* ``rope_ntk`` (bloc97, "NTK-aware scaled RoPE"): the base becomes
  ``base * scale^(d / (d - 2))`` (``ntk_scaled_base``), which leaves the highest frequency
  unchanged and divides the lowest by ``scale``. ``dynamic=True`` (dynamic NTK, as in
  HuggingFace transformers' ``_compute_dynamic_ntk_parameters``) sets the base from the current
  sequence length L at run time: ``base * (scale * L / train_length - (scale - 1))^(d / (d - 2))``
  for L > train_length and ``base`` otherwise (``dynamic_ntk_base``).
* ``rope_yarn`` (Peng et al. 2023, YaRN): NTK-by-parts. Each pair i blends
  ``(1 - gamma_i) * theta_i / scale + gamma_i * theta_i``: long wavelengths are interpolated,
  short ones kept. ``ramp="index"`` (default) is the ramp of the authors' code
  (jquesnelle/yarn ``find_correction_range`` / ``linear_ramp_mask``) and of HuggingFace's
  ``_compute_yarn_parameters``: gamma falls linearly in the pair index from 1 at
  ``low = floor(dim(beta))`` to 0 at ``high = ceil(dim(alpha))``, where
  ``dim(n) = d ln(train_length / (2 pi n)) / (2 ln base)`` is the pair that turns n times over
  ``train_length`` (``yarn_correction_dim``). ``ramp="rotations"`` is the paper's formula,
  linear in the number of rotations ``r_i = train_length * theta_i / (2 pi)``:
  ``gamma = clip((r - alpha) / (beta - alpha), 0, 1)``. Both use alpha = 1, beta = 32.
  Attention logits are multiplied by ``1/t`` with ``sqrt(1/t) = 0.1 ln(scale) + 1``
  (``yarn_attention_factor``); here q carries the whole factor squared (``Rotation.q_scale``),
  which scales q.k exactly as scaling q and k each by the factor would.
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lengthgen.positional.base import (Rotation, capped_positions, check_no_params,
                                       default_length)
from lengthgen.positional.rope import Rope, rope_angles, rope_inv_frequencies, rotary_dims


def ntk_scaled_base(base: float, head_dim: int, scale: float) -> float:
  """NTK-aware base: ``base * scale ** (d / (d - 2))``."""
  if head_dim <= 2:
    raise ValueError(f"ntk_scaled_base needs head_dim > 2, got {head_dim}")
  return float(base * scale ** (head_dim / (head_dim - 2)))


def yarn_attention_factor(scale: float) -> float:
  """YaRN's ``sqrt(1/t) = 0.1 * ln(scale) + 1`` (1 for scale <= 1)."""
  return 1.0 if scale <= 1.0 else float(0.1 * math.log(scale) + 1.0)


def dynamic_ntk_base(base: float, head_dim: int, scale, length, train_length: int):
  """Dynamic NTK base for the current length (HuggingFace ``_compute_dynamic_ntk_parameters``).

  Args:
    base: RoPE base.
    head_dim: number of rotated channels d.
    scale: the scaling factor; at 1 the base follows ``(L / train_length)^(d / (d - 2))``.
    length: current sequence length L (a number or a jax scalar).
    train_length: training length; for L <= train_length the base is ``base``.

  Returns:
    ``base * (scale * L' / train_length - (scale - 1))^(d / (d - 2))`` with
    ``L' = max(L, train_length)``, of the type of ``length``.
  """
  if head_dim <= 2:
    raise ValueError(f"dynamic_ntk_base needs head_dim > 2, got {head_dim}")
  ratio = length / train_length
  ratio = jnp.maximum(ratio, 1.0) if isinstance(ratio, jax.Array) else max(ratio, 1.0)
  return base * (scale * ratio - (scale - 1)) ** (head_dim / (head_dim - 2))


YARN_RAMPS = ("index", "rotations")


def yarn_correction_dim(num_rotations: float, head_dim: int, base: float,
                        train_length: int) -> float:
  """Pair index (fractional) whose frequency turns ``num_rotations`` times in ``train_length``."""
  return head_dim * math.log(train_length / (num_rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_inv_frequencies(head_dim: int, *, base: float, scale: float, train_length: int,
                         alpha: float = 1.0, beta: float = 32.0,
                         ramp: str = "index") -> np.ndarray:
  """NTK-by-parts frequencies of YaRN, float32 [head_dim // 2].

  Args:
    head_dim: number of rotated channels d.
    base: RoPE base.
    scale: context extension factor s.
    train_length: original context length.
    alpha: rotations below which a pair is fully interpolated (the reference's beta_slow).
    beta: rotations above which a pair is kept (the reference's beta_fast).
    ramp: ``"index"`` (the authors' and HuggingFace's code) or ``"rotations"`` (the paper).

  Returns:
    ``(1 - gamma) * theta / s + gamma * theta`` with gamma from ``ramp``.
  """
  theta = rope_inv_frequencies(head_dim, base=base).astype(np.float64)
  if ramp == "index":
    # As find_correction_range: high is clamped to head_dim - 1 (not head_dim // 2 - 1), and
    # equal bounds are separated by 0.001 as in linear_ramp_mask.
    low = max(math.floor(yarn_correction_dim(beta, head_dim, base, train_length)), 0)
    high = min(math.ceil(yarn_correction_dim(alpha, head_dim, base, train_length)), head_dim - 1)
    if low == high:
      high += 0.001
    gamma = 1.0 - np.clip((np.arange(head_dim // 2) - low) / (high - low), 0.0, 1.0)
  elif ramp == "rotations":
    ratio = train_length / (2 * math.pi / theta)
    gamma = np.clip((ratio - alpha) / (beta - alpha), 0.0, 1.0)
  else:
    raise ValueError(f"yarn: unknown ramp {ramp!r}; valid: {', '.join(YARN_RAMPS)}")
  return ((1 - gamma) * theta / scale + gamma * theta).astype(np.float32)


def _check_scale(name, scale):
  if not isinstance(scale, (int, float)) or scale < 1.0:
    raise ValueError(f"{name}: scale must be a number >= 1, got {scale!r}")


def interpolated_rotation(positions_BT: jax.Array, inv_freq_F, *, scale: float,
                          eval_scale: float | None = None, train_scales=(),
                          layout: str = "half", train: bool = False,
                          rng: jax.Array | None = None) -> Rotation:
  """Position-interpolated angles ``positions / scale * inv_freq``; pure.

  Args:
    positions_BT: [B, T] positions.
    inv_freq_F: [F] inverse frequencies before interpolation.
    scale: the factor in training (and at evaluation unless ``eval_scale``).
    eval_scale: the factor at evaluation (Giraffe); default ``scale``.
    train_scales: if non-empty, training draws one of these per example (E^2-LLM).
    layout: ``"half"`` (default) or ``"interleaved"``.
    train: training-time factor(s) instead of ``eval_scale``.
    rng: ``jax.random`` key for the per-example draw; needed when ``train`` and
      ``train_scales``.

  Returns:
    A ``Rotation`` with float32 cos/sin [B, T, F] (q_scale 1).
  """
  b = positions_BT.shape[0]
  if train and train_scales:
    if rng is None:
      raise ValueError("rope_pi with train_scales draws a scale per training example: "
                       "pass rng (a jax.random key) when train=True")
    choice = jax.random.randint(rng, (b,), 0, len(train_scales))
    scale_B = jnp.asarray(train_scales, jnp.float32)[choice]
  else:
    eval_scale = scale if eval_scale is None else eval_scale
    scale_B = jnp.full((b,), scale if train else eval_scale, jnp.float32)
  inv = jnp.asarray(inv_freq_F, jnp.float32)
  angles = positions_BT.astype(jnp.float32)[..., None] / scale_B[:, None, None] * inv
  return Rotation(jnp.cos(angles), jnp.sin(angles), layout=layout)


class InterpolatedRotary(nn.Module):
  """Position-interpolated angles (``interpolated_rotation``), scales differing by phase.

  In training, ``train_scales`` (E^2-LLM) draws one scale per example from the "dropout" rng
  stream; otherwise ``scale`` is used in training and ``eval_scale`` at evaluation (Giraffe's
  larger factor at evaluation than in training).

  Called with ``capped_at=window`` it returns ``(rotation, capped)``: the rotation at the
  positions and LM-Infinite's capped-query rotation (every position at ``window``), both with
  the length and random draw of the positions (the pair ``Encoding.rotate_qk`` /
  ``capped_query`` compute).
  """

  inv_freq: tuple[float, ...]
  scale: float
  eval_scale: float
  train_scales: tuple[float, ...] = ()
  layout: str = "half"

  def __call__(self, positions_BT: jax.Array, *, train: bool = False, capped_at=None):
    rng = self.make_rng("dropout") if train and self.train_scales else None
    rotate = lambda p: interpolated_rotation(
        p, self.inv_freq, scale=self.scale, eval_scale=self.eval_scale,
        train_scales=self.train_scales, layout=self.layout, train=train, rng=rng)
    if capped_at is None:
      return rotate(positions_BT)
    return rotate(positions_BT), rotate(capped_positions(positions_BT, capped_at))


@dataclasses.dataclass(frozen=True)
class RopePI(Rope):
  """RoPE with positions divided by ``scale`` (Position Interpolation).

  ``eval_scale`` (Giraffe) uses another factor at evaluation; ``train_scales`` (E^2-LLM)
  samples the factor per training example so one run serves several evaluation lengths.
  """

  scale: float = 1.0
  eval_scale: float | None = None
  train_scales: tuple = ()
  name = "rope_pi"

  def __post_init__(self):
    super().__post_init__()
    object.__setattr__(self, "train_scales", tuple(float(x) for x in self.train_scales))
    for s in (self.scale, self.eval_scale or 1.0, *self.train_scales):
      _check_scale(self.name, s)

  def rotary(self, head_dim: int) -> nn.Module:
    inv = tuple(float(f) for f in super().inv_frequencies(head_dim))
    return InterpolatedRotary(inv, float(self.scale), float(self.eval_scale or self.scale),
                              self.train_scales, self.layout)

  def rotation(self, head_dim: int, positions_BT: jax.Array, *, length=None,
               train: bool = False, rng=None, params=None) -> Rotation:
    """Pure rotary hook (see ``Encoding.rotation``); ``rng`` is needed to train with
    ``train_scales``."""
    del length
    check_no_params(self.name, params)
    return interpolated_rotation(positions_BT, super().inv_frequencies(head_dim),
                                 scale=float(self.scale),
                                 eval_scale=float(self.eval_scale or self.scale),
                                 train_scales=self.train_scales, layout=self.layout,
                                 train=train, rng=rng)

  def inv_frequencies(self, head_dim: int) -> np.ndarray:
    return (super().inv_frequencies(head_dim) / np.float32(self.scale)).astype(np.float32)


def dynamic_ntk_rotation(positions_BT: jax.Array, *, rotary_dim: int, base: float,
                         train_length: int, scale: float = 1.0, layout: str = "half",
                         length=None) -> Rotation:
  """Dynamic-NTK angles: the base follows the sequence length (``dynamic_ntk_base``); pure.

  Args:
    positions_BT: [B, T] positions.
    rotary_dim: number of rotated channels d (even).
    base: RoPE base at or below ``train_length``.
    train_length: the training length.
    scale: HuggingFace's dynamic-NTK ``factor`` (default 1).
    layout: ``"half"`` (default) or ``"interleaved"``.
    length: the current length L (number or scalar array); default ``max(positions) + 1``.

  Returns:
    A ``Rotation`` with float32 cos/sin [B, rotary_dim // 2] per position (q_scale 1).
  """
  length = default_length(positions_BT) if length is None else jnp.asarray(length,
                                                                             jnp.float32)
  d = rotary_dim
  base = dynamic_ntk_base(base, d, scale, length, train_length)
  inv_freq = base ** (-2.0 * jnp.arange(d // 2, dtype=jnp.float32) / d)
  cos, sin = rope_angles(positions_BT, inv_freq)
  return Rotation(cos, sin, layout=layout)


class DynamicNTKRotary(nn.Module):
  """NTK-aware angles whose base follows the current length L = max(position) + 1.

  Called with ``capped_at=window`` it returns ``(rotation, capped)``: the rotation at the
  positions and LM-Infinite's capped-query rotation (every position at ``window``), both with
  the length and random draw of the positions (the pair ``Encoding.rotate_qk`` /
  ``capped_query`` compute).
  """

  rotary_dim: int
  base: float
  train_length: int
  layout: str = "half"
  scale: float = 1.0

  def __call__(self, positions_BT: jax.Array, *, train: bool = False, capped_at=None):
    del train
    length = default_length(positions_BT)
    rotate = lambda p: dynamic_ntk_rotation(
        p, rotary_dim=self.rotary_dim, base=self.base, train_length=self.train_length,
        scale=self.scale, layout=self.layout, length=length)
    if capped_at is None:
      return rotate(positions_BT)
    return rotate(positions_BT), rotate(capped_positions(positions_BT, capped_at))


@dataclasses.dataclass(frozen=True)
class RopeNTK(Rope):
  """RoPE with the NTK-aware base: static ``scale``, or ``dynamic`` from the length.

  With ``dynamic=True``, ``scale`` is HuggingFace's dynamic-NTK ``factor`` (``dynamic_ntk_base``);
  the default 1 makes the base follow ``(L / train_length)^(d / (d - 2))``.
  """

  scale: float = 1.0
  dynamic: bool = False
  train_length: int = 512
  name = "rope_ntk"

  def __post_init__(self):
    super().__post_init__()
    _check_scale(self.name, self.scale)
    if self.train_length < 1:
      raise ValueError(f"rope_ntk: train_length must be >= 1, got {self.train_length}")

  def inv_frequencies(self, head_dim: int) -> np.ndarray:
    d = rotary_dims(head_dim, self.fraction)
    return rope_inv_frequencies(d, base=ntk_scaled_base(self.base, d, self.scale))

  def rotary(self, head_dim: int) -> nn.Module:
    if self.dynamic:
      return DynamicNTKRotary(rotary_dims(head_dim, self.fraction), self.base,
                              self.train_length, self.layout, float(self.scale))
    return super().rotary(head_dim)

  def rotation(self, head_dim: int, positions_BT: jax.Array, *, length=None,
               train: bool = False, rng=None, params=None) -> Rotation:
    """Pure rotary hook (see ``Encoding.rotation``); ``length`` matters when ``dynamic``."""
    if not self.dynamic:
      return super().rotation(head_dim, positions_BT, train=train, rng=rng, params=params)
    check_no_params(self.name, params)
    return dynamic_ntk_rotation(positions_BT, rotary_dim=rotary_dims(head_dim, self.fraction),
                                base=self.base, train_length=self.train_length,
                                scale=float(self.scale), layout=self.layout, length=length)


@dataclasses.dataclass(frozen=True)
class RopeYaRN(Rope):
  """YaRN: NTK-by-parts frequencies and the 0.1 ln(s) + 1 attention factor.

  ``ramp="index"`` (default) matches the authors' code and HuggingFace; ``ramp="rotations"``
  is the paper's ramp in the number of rotations (see the module docstring).
  """

  scale: float = 1.0
  train_length: int = 512
  alpha: float = 1.0
  beta: float = 32.0
  ramp: str = "index"
  name = "rope_yarn"

  def __post_init__(self):
    super().__post_init__()
    _check_scale(self.name, self.scale)
    if not 0 <= self.alpha < self.beta:
      raise ValueError(f"rope_yarn: need 0 <= alpha < beta, got {self.alpha}, {self.beta}")
    if self.ramp not in YARN_RAMPS:
      raise ValueError(f"rope_yarn: unknown ramp {self.ramp!r}; valid: {', '.join(YARN_RAMPS)}")
    if self.ramp == "index" and self.alpha <= 0:
      raise ValueError(f"rope_yarn: ramp='index' needs alpha > 0, got {self.alpha}")

  def inv_frequencies(self, head_dim: int) -> np.ndarray:
    return yarn_inv_frequencies(rotary_dims(head_dim, self.fraction), base=self.base,
                                scale=self.scale, train_length=self.train_length,
                                alpha=self.alpha, beta=self.beta, ramp=self.ramp)

  def query_scale(self) -> float:
    """YaRN's attention factor squared, ``(0.1 ln s + 1)^2``, carried by q alone."""
    return yarn_attention_factor(self.scale) ** 2

"""Normalizers: how q and k become scores and masked scores become attention weights.

A normalizer is one ``Normalizer`` object that declares everything about itself: its score
and weights functions, its learned parameters (created by the layer that uses it, or by
``Normalizer.init_params``) and its options with their defaults and validation. Attention
implementations and the layer only talk to these objects, so a new normalizer is one object
and one line in ``NORMALIZERS``.

``score(q_BTHD, k_BSHD, n_visible, scale)`` returns float32 scores [B, H, T, S]; the position
bias is added to them. ``weights(scores_BHTS, mask, n_visible, *, params, options,
query_index)`` takes a boolean mask [B|1, 1, T, S], the number of visible keys per row
``n_visible`` [B|1, 1, T, 1], the learned arrays by name, the options with defaults filled
in and the absolute index of each query [T]; it returns weights [B, H, T, S] (fully masked
rows are all zero).

* ``softmax``; its ``length_temperature`` modifier (task hinting's length-dependent
  temperature) multiplies the logits by ``1 + a_h * log n`` with a learned per-head
  ``length_scale`` a_h, initialized to 0 (plain softmax).
* ``ssmax`` (Scalable-Softmax, Nakanishi 2025): logits multiplied by ``s_h * log n`` with a
  learned per-head ``ssmax_scale`` s_h (option ``init``, default ``SSMAX_INIT`` = 0.43:
  s log n = 1 at n ~ 10, sharpening grows from there with length). This is not a per-row constant shift (to which
  softmax is invariant): it sharpens long rows.
* ``softplus`` (LSSA, Gao & Spratling 2025): with unit-normalized q and k, scores
  ``log(d) * log(n) * cos`` (``lssa_scores``), weights ``softplus(score)`` masked by
  multiplication and L1-normalized per row. A position bias acts inside the softplus, after
  the length scaling.
* ``softplus_reweight`` (LSSAR): LSSA's weights A, then ``relu(n * A - O)^p`` (option
  ``power`` p, default 15) with O = 1 except the first three rows (O = 0), L1-normalized
  again. Computed as ``(x / max x)^p`` in log space, so it stays finite at any length in
  float32 and bfloat16. A row whose entries are all at uniform weight (every x <= 0) keeps
  LSSA's weights.

The softmax family scales q.k by ``scale`` (default 1/sqrt(D)). LSSA has no such factor: its
scores are the cosine of unit-normalized q and k times the fixed ``log(d) log(n)`` of the
paper, so ``softplus`` and ``softplus_reweight`` declare ``takes_scale=False`` and a ``scale``
given to them is an error (``check_scale``) rather than silently unused.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

SSMAX_INIT = 0.43  # ssmax's initial per-head s (Nakanishi 2025): s log n = 1 at n ~ 10


def per_head(num_heads: int) -> tuple[int, ...]:
  return (num_heads,)


@dataclasses.dataclass(frozen=True)
class Param:
  """A learned parameter of a normalizer.

  Attributes:
    name: its name, in the layer's parameter tree and in ``normalizer_params``.
    doc: what it is (error messages quote it).
    init: constant initial value, unless ``init_option`` names the option that holds it.
    init_option: the option whose value initializes the parameter.
    modifier: if set, the parameter exists only when this modifier is on (the layer's
      flag of the same name); otherwise the normalizer always needs it.
    shape: the shape, as a function of the number of heads.
  """

  name: str
  doc: str
  init: float = 0.0
  init_option: str | None = None
  modifier: str | None = None
  shape: Callable[[int], tuple[int, ...]] = per_head

  def initial_value(self, options: Mapping[str, Any]) -> float:
    """The initial value under ``options`` (resolved: defaults filled in)."""
    return options[self.init_option] if self.init_option else self.init


@dataclasses.dataclass(frozen=True)
class Option:
  """A normalizer option: its default and what a valid value is ("must be <requirement>")."""

  name: str
  default: Any
  valid: Callable[[Any], bool]
  requirement: str


class OptionError(ValueError):
  """A bad normalizer option; ``option`` names it (None for unknown options)."""

  def __init__(self, message: str, option: str | None = None):
    super().__init__(message)
    self.option = option


def is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class Normalizer:
  """One normalizer: score and weights functions, learned parameters, options.

  ``takes_scale``: whether ``score`` uses the ``scale`` argument (the softmax family); if
  not, a ``scale`` other than None is an error.
  """

  name: str
  weights: Callable[..., jax.Array]
  score: Callable[..., jax.Array]
  params: tuple[Param, ...] = ()
  options: tuple[Option, ...] = ()
  takes_scale: bool = True

  def check_scale(self, scale) -> None:
    """Raises ``ValueError`` if ``scale`` is given to a normalizer whose scores ignore it."""
    if scale is not None and not self.takes_scale:
      raise ValueError(f"normalizer {self.name!r} takes no scale (its scores are "
                       f"log(d) * log(n) * cos(q, k), LSSA's fixed scaling); got "
                       f"scale={scale!r}. Leave scale=None, or use a softmax-family "
                       f"normalizer for a score scale.")

  @property
  def defaults(self) -> dict[str, Any]:
    """Option name -> default value."""
    return {o.name: o.default for o in self.options}

  @property
  def modifiers(self) -> tuple[str, ...]:
    """The modifiers this normalizer accepts (each enables its parameters)."""
    return tuple(dict.fromkeys(p.modifier for p in self.params if p.modifier))

  def check_options(self, options: Mapping[str, Any]) -> None:
    """Raises ``OptionError`` for an unknown option or a bad value, naming the option."""
    unknown = sorted(set(options) - set(self.defaults))
    if unknown:
      raise OptionError(f"unknown option(s) {unknown} for normalizer {self.name!r}; valid "
                        f"options: {list(self.defaults) or 'none'}")
    for o in self.options:
      if o.name in options and not o.valid(options[o.name]):
        raise OptionError(f"{o.name} must be {o.requirement}, got {options[o.name]!r}", o.name)

  def resolve_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checked options with every default filled in."""
    options = dict(options or {})
    self.check_options(options)
    return {**self.defaults, **options}

  def param_specs(self, modifiers=()) -> tuple[Param, ...]:
    """The parameters in use: the required ones and those of the ``modifiers`` turned on."""
    unknown = sorted(set(modifiers) - set(self.modifiers))
    if unknown:
      raise ValueError(f"normalizer {self.name!r} has no modifier(s) {unknown}; its "
                       f"modifiers: {list(self.modifiers) or 'none'}")
    return tuple(p for p in self.params if p.modifier is None or p.modifier in modifiers)

  def init_params(self, num_heads: int, options=None, *, modifiers=()) -> dict[str, jax.Array]:
    """Initial values of the parameters in use, float32, by name."""
    options = self.resolve_options(options)
    return {p.name: jnp.full(p.shape(num_heads), p.initial_value(options), jnp.float32)
            for p in self.param_specs(modifiers)}

  def checked_params(self, params: Mapping[str, Any] | None, *,
                     num_heads: int | None = None) -> dict[str, Any]:
    """The given learned arrays (None entries count as absent), checked.

    Args:
      params: learned arrays by name.
      num_heads: if given, each array must have its declared shape for H = num_heads
        (e.g. ``ssmax_scale`` [H]).

    Raises:
      ValueError: an unknown parameter, a missing required one, or one of the wrong shape
        (the message names it, its expected and its actual shape).
    """
    params = {name: p for name, p in (params or {}).items() if p is not None}
    known = [p.name for p in self.params]
    unknown = sorted(set(params) - set(known))
    if unknown:
      raise ValueError(f"normalizer {self.name!r} has no parameter(s) {unknown}; its "
                       f"parameters: {known or 'none'}")
    for p in self.params:
      if p.modifier is None and params.get(p.name) is None:
        raise ValueError(f"normalizer {self.name!r} needs {p.name}: {p.doc}")
      if num_heads is not None and p.name in params:
        want, got = p.shape(num_heads), tuple(jnp.shape(params[p.name]))
        if got != want:
          raise ValueError(f"normalizer {self.name!r}: {p.name} must have shape {want} "
                           f"({p.doc}, H = {num_heads} from q's axis 2), got shape {got}")
    return params


def _log_n(n_visible):
  return jnp.log(jnp.maximum(n_visible, 1).astype(jnp.float32))


def _unit(x):
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def scaled_dot_scores(q_BTHD, k_BSHD, n_visible, scale):
  """q.k * scale (default 1/sqrt(D)), float32 [B, H, T, S]."""
  del n_visible
  scale = q_BTHD.shape[-1] ** -0.5 if scale is None else scale
  return jnp.einsum("bthd,bshd->bhts", q_BTHD.astype(jnp.float32),
                    k_BSHD.astype(jnp.float32)) * scale


def lssa_scores(q_BTHD, k_BSHD, n_visible, scale):
  """LSSA's argument of the softplus, log(d) * log(n) * cos(q, k), float32 [B, H, T, S].

  ``scale`` is not used (``Normalizer.check_scale`` rejects one at the entry points).
  """
  del scale
  cos = jnp.einsum("bthd,bshd->bhts", _unit(q_BTHD), _unit(k_BSHD))
  return jnp.log(float(q_BTHD.shape[-1])) * _log_n(n_visible) * cos


def masked_softmax(logits, mask):
  logits = jnp.where(mask, logits, -jnp.inf)
  row_max = jnp.max(logits, axis=-1, keepdims=True)
  row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
  p = jnp.where(mask, jnp.exp(logits - jax.lax.stop_gradient(row_max)), 0.0)
  denom = jnp.sum(p, axis=-1, keepdims=True)
  return p / jnp.where(denom == 0, 1.0, denom)


def softmax_weights(scores, mask, n_visible, *, params, options, query_index):
  del options, query_index
  length_scale = params.get("length_scale")
  if length_scale is not None:
    a = jnp.asarray(length_scale, jnp.float32)[None, :, None, None]
    scores = scores * (1.0 + a * _log_n(n_visible))
  return masked_softmax(scores, mask)


def ssmax_weights(scores, mask, n_visible, *, params, options, query_index):
  del options, query_index
  s = jnp.asarray(params["ssmax_scale"], jnp.float32)[None, :, None, None]
  return masked_softmax(scores * s * _log_n(n_visible), mask)


def softplus_weights(logits, mask, n_visible, *, params=None, options=None, query_index=None):
  del n_visible, params, options, query_index
  a = jax.nn.softplus(logits) * mask
  denom = jnp.sum(a, axis=-1, keepdims=True)
  return a / jnp.where(denom == 0, 1.0, denom)


def softplus_reweight_weights(logits, mask, n_visible, *, params, options, query_index):
  """LSSAR; rows whose query index is below 3 use O = 0."""
  del params
  power = float(options["power"])
  a = softplus_weights(logits, mask, n_visible)
  offset = jnp.where(query_index < 3, 0.0, 1.0)[None, None, :, None]
  x = jnp.where(mask, n_visible.astype(jnp.float32) * a - offset, 0.0)
  positive = x > 0
  log_x = jnp.log(jnp.where(positive, x, 1.0))
  log_max = jnp.max(jnp.where(positive, log_x, -jnp.inf), axis=-1, keepdims=True)
  any_positive = jnp.isfinite(log_max)
  log_max = jnp.where(any_positive, log_max, 0.0)
  r = jnp.where(positive, jnp.exp(power * (log_x - jax.lax.stop_gradient(log_max))), 0.0)
  denom = jnp.sum(r, axis=-1, keepdims=True)
  reweighted = r / jnp.where(denom == 0, 1.0, denom)
  return jnp.where(any_positive, reweighted, a)


SOFTMAX = Normalizer(
    "softmax", softmax_weights, scaled_dot_scores,
    params=(Param("length_scale", "the learned per-head a of 1 + a log n, shape [H]",
                  init=0.0, modifier="length_temperature"),))
SSMAX = Normalizer(
    "ssmax", ssmax_weights, scaled_dot_scores,
    params=(Param("ssmax_scale", "the learned per-head s, shape [H]", init_option="init"),),
    options=(Option("init", SSMAX_INIT, is_number, "a number"),))
SOFTPLUS = Normalizer("softplus", softplus_weights, lssa_scores, takes_scale=False)
SOFTPLUS_REWEIGHT = Normalizer(
    "softplus_reweight", softplus_reweight_weights, lssa_scores,
    options=(Option("power", 15.0, lambda p: is_number(p) and p > 0, "a positive number"),),
    takes_scale=False)

NORMALIZERS = {n.name: n for n in (SOFTMAX, SSMAX, SOFTPLUS, SOFTPLUS_REWEIGHT)}


def get(name: str) -> Normalizer:
  """The registered normalizer ``name``; unknown names list the valid ones."""
  if name not in NORMALIZERS:
    raise ValueError(f"unknown normalizer {name!r}; valid normalizers: "
                     f"{', '.join(NORMALIZERS)}")
  return NORMALIZERS[name]

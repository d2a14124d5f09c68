"""The three hooks through which a positional encoding acts, and NoPE.

An encoding is a frozen dataclass whose methods build (or decline to build) one Flax
module per hook. The model calls them once, with explicit positions, and never looks at
the encoding's name:

* ``embedding(width)``  -> module ``(positions_BT, *, train) -> [B, T, width]`` added to
  the token embeddings (sinusoidal, learned, Abacus);
* ``rotary(head_dim)`` -> module ``(positions_BT, *, train) -> Rotation`` applied to q and k
  in every layer (RoPE and its scaled forms, CLEX). The module is a thin wrapper over the
  pure ``rotation(head_dim, positions_BT, ...)``; ``rotate_qk`` applies it to q and k with
  everything the encoding means (angles, layout, partial rotary, attention factor), so
  another framework (nnx, plain JAX) needs no linen module;
* ``bias(num_heads, causal=...)`` -> module ``(q_positions_BT, k_positions_BS, *, train) ->
  bias spec`` added to the attention scores (ALiBi, T5, FIRE). With ``share_bias`` the
  model builds it once and every layer uses it; otherwise each layer owns one.

An encoding whose score term depends on the queries themselves (Transformer-XL's relative
encoding, ``lengthgen.positional.relative``) adds a fourth hook, ``query_bias(num_heads,
head_dim)`` -> module ``(q_BTHD, k_BSHD, q_positions_BT, k_positions_BS, *, scale, train) ->
dense [B, H, T, S]``, which every layer owns and calls on its projected q and k.

Any hook may return ``None``. NoPE returns ``None`` from all of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from lengthgen.attention.masks import as_window
from lengthgen.positional.rotary import check_positions, rotate


def default_length(*positions) -> jax.Array:
  """``max(positions) + 1`` over all given position arrays, a float32 scalar.

  The sequence length L that length-dependent encodings see when none is given.
  """
  top = jnp.max(jnp.asarray(positions[0]))
  for p in positions[1:]:
    top = jnp.maximum(top, jnp.max(jnp.asarray(p)))
  return top.astype(jnp.float32) + 1.0


def capped_positions(positions_BT: jax.Array, window) -> jax.Array:
  """[B, T] positions all equal to ``window``: where LM-Infinite's capped queries stand."""
  return jnp.full(jnp.shape(positions_BT), window, jnp.asarray(positions_BT).dtype)


def check_no_params(name: str, params) -> None:
  """Raises ``ValueError`` if ``params`` are given to an encoding whose rotation has none."""
  if params:
    raise ValueError(f"positional encoding {name!r} has no rotary parameters; got params "
                     f"{sorted(params)}")


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
    """Rotates x [B, T, H, D] (T and B matching the angles; B may be 1 in the angles).

    Args:
      x_BTHD: queries or keys, any float dtype.
      is_query: also multiply by ``q_scale`` (queries only).

    Returns:
      [B, T, H, D] in x's dtype.
    """
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

  def default_positions_options(self) -> dict:
    """Options for ``default_positions`` that follow from the encoding (CLEX's ``t_max``);
    a config's ``positions_options`` override them."""
    return {}

  def embedding(self, width: int) -> nn.Module | None:
    del width
    return None

  def rotary(self, head_dim: int) -> nn.Module | None:
    del head_dim
    return None

  def bias(self, num_heads: int, *, causal: bool) -> nn.Module | None:
    del num_heads, causal
    return None

  def query_bias(self, num_heads: int, head_dim: int) -> nn.Module | None:
    del num_heads, head_dim
    return None

  def rotation(self, head_dim: int, positions_BT: jax.Array, *, length=None,
               train: bool = False, rng: jax.Array | None = None,
               params: Mapping[str, jax.Array] | None = None) -> Rotation | None:
    """The rotary hook as a pure function: the ``Rotation`` at ``positions_BT``, or None.

    ``rotary(head_dim)`` is a linen wrapper over this; both give the same values.

    Args:
      head_dim: D of q and k.
      positions_BT: int (or float) positions [B, T].
      length: the current sequence length L for encodings that depend on it (dynamic NTK,
        CLEX): a number or scalar array; default ``max(positions_BT) + 1``, as the module.
      train: training-time behaviour (E^2-LLM's sampled scale, Giraffe's training scale,
        CLEX's sampled t).
      rng: a ``jax.random`` key, needed when ``train`` draws something (``rope_pi`` with
        ``train_scales``, ``clex``); the same key gives the same draw.
      params: learned parameters of the rotary hook (``clex`` only, see ``Clex.init_params``).

    Returns:
      A ``Rotation`` (float32 cos/sin [B, T, F], layout, q_scale), or None for an encoding
      that does not rotate.
    """
    del head_dim, positions_BT, length, train, rng
    check_no_params(self.name, params)
    return None

  def rotate_qk(self, q_BTHD: jax.Array, k_BSHD: jax.Array, q_positions_BT: jax.Array,
                k_positions_BS: jax.Array | None = None, *, length=None, train: bool = False,
                rng: jax.Array | None = None,
                params: Mapping[str, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
    """Rotates q and k at their positions with everything the encoding means; pure.

    Applies the encoding's angles, layout ("half" or "interleaved"), partial rotary and
    frequency changes (PI, NTK, YaRN, Giraffe truncation, CLEX) and, on q, its attention
    factor (YaRN's ``(0.1 ln s + 1)^2``, CLEX's log-length scaling). The same arguments give
    the same values as the model's rotary path. Encodings that do not rotate (NoPE, ALiBi,
    T5, FIRE, absolute ones) return q and k unchanged.

    Args:
      q_BTHD: queries [B, T, H, D], any float dtype.
      k_BSHD: keys [B, S, H, D] with the same D.
      q_positions_BT: query positions [B or 1, T], int.
      k_positions_BS: key positions [B or 1, S]; default ``q_positions_BT`` (self-attention).
      length: the sequence length L seen by length-dependent encodings (dynamic NTK, CLEX),
        shared by q and k; default ``max(q_positions, k_positions) + 1``.
      train, rng, params: as in ``rotation``.

    Returns:
      (q, k) rotated, [B, T, H, D] and [B, S, H, D] in their input dtypes.
    """
    k_positions_BS = q_positions_BT if k_positions_BS is None else k_positions_BS
    check_positions(q_BTHD, q_positions_BT, "q_BTHD", "q_positions_BT")
    check_positions(k_BSHD, k_positions_BS, "k_BSHD", "k_positions_BS")
    if q_BTHD.shape[-1] != k_BSHD.shape[-1]:
      raise ValueError(f"q_BTHD and k_BSHD need the same head dim D; got shapes "
                       f"{q_BTHD.shape} and {k_BSHD.shape}")
    if length is None:
      length = default_length(q_positions_BT, k_positions_BS)
    hook = dict(length=length, train=train, rng=rng, params=params)
    head_dim = q_BTHD.shape[-1]
    q_rotation = self.rotation(head_dim, q_positions_BT, **hook)
    if q_rotation is None:
      return q_BTHD, k_BSHD
    k_rotation = (q_rotation if k_positions_BS is q_positions_BT  # self-attention: one
                  else self.rotation(head_dim, k_positions_BS, **hook))
    return q_rotation.apply(q_BTHD, is_query=True), k_rotation.apply(k_BSHD, is_query=False)

  def capped_query(self, q_BTHD: jax.Array, window, q_positions_BT: jax.Array,
                   k_positions_BS: jax.Array | None = None, *, length=None,
                   train: bool = False, rng: jax.Array | None = None,
                   params: Mapping[str, jax.Array] | None = None) -> jax.Array | None:
    """LM-Infinite's distance-capped queries: q rotated as if every query stood at ``window``.

    Pass the result as ``q_capped`` to ``lengthgen.attention.dot_product_attention`` with the
    same ``window`` and ``global_tokens`` > 0: global tokens beyond the window are then seen
    from distance ``window - j``, never farther. Takes the unrotated q and the arguments of
    ``rotate_qk`` (the length-dependent frequencies and random draws are those of that call);
    the capped rotation is the one the model's layer applies.

    Args:
      q_BTHD: unrotated queries [B, T, H, D].
      window: the attention window, a positive integer (or numpy / 0-d integer).
      q_positions_BT, k_positions_BS, length, train, rng, params: as in ``rotate_qk``.

    Returns:
      [B, T, H, D] in q's dtype, or None for an encoding that does not rotate (no cap needed).
    """
    if window is None:
      raise ValueError("capped_query needs the attention window, got None")
    window = as_window(window)
    k_positions_BS = q_positions_BT if k_positions_BS is None else k_positions_BS
    check_positions(q_BTHD, q_positions_BT, "q_BTHD", "q_positions_BT")
    if length is None:
      length = default_length(q_positions_BT, k_positions_BS)
    rotation = self.rotation(q_BTHD.shape[-1], capped_positions(q_positions_BT, window), length=length, train=train, rng=rng,
                             params=params)
    return None if rotation is None else rotation.apply(q_BTHD, is_query=True)

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

"""Transformer-XL's relative positional encoding (Dai et al. 2019), as Deletang et al. 2023 use it.

Every layer adds to the content score q_i . k_j a learned content bias and a relative term:

    score_ij = [(q_i + u) . k_j  +  (q_i + v) . (W_r s(p_j - p_i))] * scale

with s(d) the sinusoid of the distance (width H D, laid out [sines | cosines] with frequencies
``max_time^(-2f / (H D))``, as Deletang's ``sinusoid_position_encoding``), W_r a learned
[H D -> H, D] projection without bias (haiku's default init: normal((H D)^-0.5) truncated at
2 standard deviations) and u, v learned [H, D] (normal(0.02)). The distance is
key minus query, as in their ``relative_shift``. Applied to q, the term is a query-dependent
bias, so this encoding acts through its own hook, ``query_bias``: the layer hands it the
projected q and k and adds the dense [B, H, T, S] result to the scores.

The relative term needs no [T, S, H, D] tensor of relative keys: with angles a_i = p_i w and
b_j = p_j w, sin(b_j - a_i) and cos(b_j - a_i) expand into products of per-query and per-key
factors, so the term is one contraction of [B, T, H, H D] query features with [B, S, H D] key
features, exact for any positions (contiguous, randomized, offset).

Positions come from the position sampler, as for every encoding: ``positions="randomized"``
makes the distances p_j - p_i differences of a sorted random subset. Ruoss et al.'s own
randomized relative encoding (their "noisy relative") draws the *distances* instead:
``random_distances=L`` replaces the index distance d = j - i by D(d), where D(d) for d >= 1 is
the d-th element of one sorted random subset of [1, L), D(-d) = -D(d) and D(0) = 0, drawn
afresh in every layer and every forward pass, at training and at evaluation alike (as their
code, which draws with ``hk.next_rng_key()`` in both). The draw takes the ``"dropout"`` rng
stream: the training step passes it, and ``lengthgen.evaluate`` passes one per evaluation
batch (``eval_rngs``), a function of the evaluation seed and length. This variant ignores the
given positions (their encoder's are 0..T-1), and needs T, S <= L.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from lengthgen.positional.absolute import sinusoid_frequencies
from lengthgen.positional.base import Encoding

__all__ = ["Relative", "RelativeLogits", "random_distance_map", "relative_frequencies",
           "relative_logits", "relative_sinusoid", "sampled_distance_logits"]


def _content_term(content_bias_HD, k_BSHD) -> jax.Array:
  """u . k_j, float32 [B, H, 1, S]: the content bias's share of every query's scores."""
  return jnp.einsum("hd,bshd->bhs", jnp.asarray(content_bias_HD, jnp.float32),
                    jnp.asarray(k_BSHD, jnp.float32))[:, :, None, :]


def relative_frequencies(width: int, max_time: float = 10000.0) -> jax.Array:
  """The sinusoid's ``width // 2`` frequencies ``max_time^(-2f / width)``, float32."""
  if width % 2:
    raise ValueError(f"relative encoding needs an even sinusoid width H*D, got {width}")
  return sinusoid_frequencies(width, max_time)


def relative_sinusoid(distances, width: int, max_time: float = 10000.0) -> jax.Array:
  """s(d) for int or float ``distances`` (any shape) -> shape + (width,): [sines | cosines]."""
  angles = jnp.asarray(distances, jnp.float32)[..., None] * relative_frequencies(width, max_time)
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


@functools.partial(jax.jit, static_argnames=("max_time",))  # one compile outside a jit (init)
def relative_logits(q_BTHD, k_BSHD, q_positions_BT, k_positions_BS, *, content_bias_HD,
                    relative_bias_HD, w_r_CHD, max_time: float = 10000.0) -> jax.Array:
  """The unscaled Transformer-XL scores minus q . k: u . k_j + (q_i + v) . W_r s(p_j - p_i).

  Args:
    q_BTHD, k_BSHD: projected queries and keys.
    q_positions_BT, k_positions_BS: positions (B may be 1).
    content_bias_HD, relative_bias_HD: u and v, [H, D].
    w_r_CHD: W_r as [C = H D, H, D] (sinusoid channel -> head, head dim).
    max_time: the sinusoid's maximum timescale.

  Returns:
    float32 [B, H, T, S]: add ``scale *`` this to ``scale * q . k``.
  """
  width = w_r_CHD.shape[0]
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  inv = relative_frequencies(width, max_time)
  content = _content_term(content_bias_HD, k_BSHD)
  # g[b, t, h, c] = sum_d (q + v)[b, t, h, d] W_r[c, h, d]: the query side of the relative term.
  g = jnp.einsum("bthd,chd->bthc", f32(q_BTHD) + f32(relative_bias_HD), f32(w_r_CHD))
  g_sin, g_cos = jnp.split(g, 2, axis=-1)
  a = f32(q_positions_BT)[..., None] * inv          # [B, T, F]
  b = f32(k_positions_BS)[..., None] * inv          # [B, S, F]
  cos_a, sin_a = jnp.cos(a)[:, :, None, :], jnp.sin(a)[:, :, None, :]
  # sin(b - a) = sin b cos a - cos b sin a;  cos(b - a) = cos b cos a + sin b sin a.
  on_sin_b = g_sin * cos_a + g_cos * sin_a
  on_cos_b = g_cos * cos_a - g_sin * sin_a
  rel = (jnp.einsum("bthf,bsf->bhts", on_sin_b, jnp.sin(b))
         + jnp.einsum("bthf,bsf->bhts", on_cos_b, jnp.cos(b)))
  return content + rel


def random_distance_map(key, num_queries: int, num_keys: int, max_distance: int) -> jax.Array:
  """D(j - i) for every query i and key j, int32 [T, S] (Ruoss et al.'s noisy relative).

  One sorted random subset r_1 < ... < r_n of [1, ``max_distance``) with n = max(T, S) - 1:
  D(d) = r_d for d >= 1, D(-d) = -r_d, D(0) = 0.
  """
  n = max(num_queries, num_keys) - 1
  if n > max_distance - 1:
    raise ValueError(f"relative: random_distances={max_distance} draws at most "
                     f"{max_distance - 1} distinct distances; this call needs {n} "
                     f"({num_queries} queries, {num_keys} keys). Raise random_distances.")
  right = jnp.sort(jax.random.choice(key, jnp.arange(1, max_distance, dtype=jnp.int32), (n,),
                                     replace=False))
  table = jnp.concatenate([-right[::-1], jnp.zeros((1,), jnp.int32), right])  # D(-n..n)
  d = jnp.arange(num_keys)[None, :] - jnp.arange(num_queries)[:, None]
  return table[d + n]


@functools.partial(jax.jit, static_argnames=("max_time",))
def sampled_distance_logits(q_BTHD, k_BSHD, distances_TS, *, content_bias_HD, relative_bias_HD,
                            w_r_CHD, max_time: float = 10000.0) -> jax.Array:
  """``relative_logits`` with the distance of query i and key j given, [T, S] (shared by the
  batch): u . k_j + (q_i + v) . W_r s(distances[i, j]); float32 [B, H, T, S], unscaled."""
  f32 = lambda x: jnp.asarray(x, jnp.float32)
  content = _content_term(content_bias_HD, k_BSHD)
  rel_keys = jnp.einsum("tsc,chd->tshd",
                        relative_sinusoid(distances_TS, w_r_CHD.shape[0], max_time),
                        f32(w_r_CHD))
  rel = jnp.einsum("bthd,tshd->bhts", f32(q_BTHD) + f32(relative_bias_HD), rel_keys)
  return content + rel


class RelativeLogits(nn.Module):
  """One layer's u, v and W_r; returns the dense score bias ``scale * relative_logits``.

  Attributes:
    num_heads, head_dim: H and D of q and k.
    max_time: the sinusoid's maximum timescale.
    random_distances: None (distances of the given positions), or L: Ruoss et al.'s sampled
      distances (``random_distance_map``), one draw per call from the ``"dropout"`` rng.
  """

  num_heads: int
  head_dim: int
  max_time: float = 10000.0
  random_distances: int | None = None

  @nn.compact
  def __call__(self, q_BTHD, k_BSHD, q_positions_BT, k_positions_BS, *, scale: float,
               train: bool = False):
    del train
    h, d = self.num_heads, self.head_dim
    init = nn.initializers.normal(0.02)
    u = self.param("content_bias", init, (h, d))
    v = self.param("relative_bias", init, (h, d))
    # haiku Linear's default: normal(fan_in^-0.5) truncated at 2 standard deviations.
    w_r = self.param("w_r", nn.initializers.truncated_normal((h * d) ** -0.5), (h * d, h, d))
    weights = dict(content_bias_HD=u, relative_bias_HD=v, w_r_CHD=w_r, max_time=self.max_time)
    if self.random_distances is None:
      return scale * relative_logits(q_BTHD, k_BSHD, q_positions_BT, k_positions_BS, **weights)
    if self.has_rng("dropout"):
      key = self.make_rng("dropout")
    elif self.is_initializing():  # init only needs the shapes: any draw will do
      key = jax.random.key(0)
    else:
      raise ValueError(
          "relative with random_distances draws its distances in every forward pass, at "
          "evaluation too: apply the model with rngs={'dropout': key} "
          "(lengthgen.evaluate.eval_rngs gives the evaluation's)")
    distances = random_distance_map(key, q_BTHD.shape[1],
                                    k_BSHD.shape[1], self.random_distances)
    return scale * sampled_distance_logits(q_BTHD, k_BSHD, distances, **weights)


@dataclasses.dataclass(frozen=True)
class Relative(Encoding):
  """Transformer-XL relative encoding: per layer, a content bias and a sinusoidal relative term
  on the projected queries (``query_bias``); no embedding, rotation or plain bias.
  ``random_distances=2048`` is Ruoss et al.'s randomized (noisy) relative encoding."""

  max_time: float = 10000.0
  random_distances: int | None = None
  name = "relative"

  def __post_init__(self):
    if not self.max_time > 1:
      raise ValueError(f"relative: max_time must be > 1, got {self.max_time}")
    if self.random_distances is not None and (
        isinstance(self.random_distances, bool) or not isinstance(self.random_distances, int)
        or self.random_distances < 2):
      raise ValueError(f"relative: random_distances must be None or an integer >= 2 (Ruoss et "
                       f"al. use 2048), got {self.random_distances!r}")

  def query_bias(self, num_heads: int, head_dim: int) -> nn.Module:
    return RelativeLogits(num_heads, head_dim, float(self.max_time), self.random_distances)

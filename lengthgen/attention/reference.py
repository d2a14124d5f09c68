"""Reference attention in plain jnp (``implementation="xla"``): the semantics every kernel matches.

Scores are computed in float32 whatever the input dtype; the output has q's dtype.
Queries are aligned to the end of the keys unless ``q_start`` (the key index of the first
query) says otherwise; the blockwise variant uses it to evaluate query blocks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import lengthgen.attention.bias as bias_lib
import lengthgen.attention.checks as checks
import lengthgen.attention.masks as masks
import lengthgen.attention.normalizers as normalizers


def attention_weights(q_BTHD, k_BSHD, *, normalizer="softmax", causal=True, window=None,
                      global_tokens=0, bias=None, q_positions=None, k_positions=None,
                      scale=None, lengths=None, q_start=None, normalizer_params=None,
                      normalizer_options=None, q_capped=None, k_index=None) -> jax.Array:
  """Attention weights, float32 [B, H, T, S]; fully masked rows are all zero.

  Args:
    q_BTHD, k_BSHD: queries [B, T, H, D] and keys [B, S, H, D], any float dtype.
    normalizer: a name of ``NORMALIZERS`` (default "softmax").
    causal, window, global_tokens, lengths, q_start, k_index: the mask (``masks.make_mask``);
      ``window`` an integer >= 1 or None, ``global_tokens`` an integer >= 0 (default 0),
      ``lengths`` [B] valid keys per example.
    bias: None, a bias spec (``AlibiBias``, ``RelativeBias``) or a dense [B|1, H|1, T, S].
    q_positions, k_positions: int [B, T] / [B, S] positions for the bias; default the key
      indices 0..S-1 with the queries at the end.
    scale: the softmax family's score scale, default 1/sqrt(D); an error for the softplus
      normalizers (``Normalizer.check_scale``).
    normalizer_params: the normalizer's learned arrays by name (None entries are absent),
      each of its declared shape (e.g. ``ssmax_scale`` [H]).
    normalizer_options: its options (defaults filled in here).
    q_capped: LM-Infinite's distance cap for rotate-type encodings, q's shape: queries
      rotated as if they stood ``window`` positions after the start. Their scores replace
      those of the global tokens that lie beyond the local window, so no query sees a
      distance larger than the window, however long the sequence.
    k_index: [S] sequence index of each key when k is a subset of the sequence (see
      ``masks.make_mask``); positions must then be given for exactly these keys.

  Raises:
    ValueError: an argument whose shape does not fit q and k (``checks``), naming it.
  """
  norm = normalizers.get(normalizer)
  b, t, s, h, _ = checks.check_inputs(q_BTHD, k_BSHD, q_positions=q_positions,
                                      k_positions=k_positions, lengths=lengths, bias=bias,
                                      q_capped=q_capped)
  norm.check_scale(scale)
  params = norm.checked_params(normalizer_params, num_heads=h)
  options = norm.resolve_options(normalizer_options)
  q_start = s - t if q_start is None else q_start
  q_positions, k_positions = masks.default_positions(b, t, s, q_positions, k_positions,
                                                     q_start=q_start)
  mask = masks.make_mask(t, s, causal=causal, window=window, global_tokens=global_tokens,
                         lengths=lengths, q_start=q_start, k_index=k_index)
  mask = jnp.broadcast_to(mask, (mask.shape[0], 1, t, s))
  n_visible = jnp.sum(mask, axis=-1, keepdims=True)
  scores = norm.score(q_BTHD, k_BSHD, n_visible, scale)
  if q_capped is not None:
    if window is None or not global_tokens:
      raise ValueError("q_capped (the distance cap) needs a window and global_tokens")
    qi = q_start + jnp.arange(t)[:, None]
    kj = (jnp.arange(s) if k_index is None else k_index)[None, :]
    far_global = (kj < global_tokens) & (qi - kj >= window)
    scores = jnp.where(far_global, norm.score(q_capped, k_BSHD, n_visible, scale), scores)
  dense = bias_lib.materialize(bias, q_positions, k_positions)
  if dense is not None:
    scores = scores + dense
  return norm.weights(scores, mask, n_visible, params=params, options=options,
                      query_index=q_start + jnp.arange(t))


def attention(q_BTHD, k_BSHD, v_BSHD, *, return_weights=False, **options):
  """Attention output [B, T, H, D] in q's dtype (and the weights [B, H, T, S] if asked).

  ``options`` are those of ``attention_weights``; v is [B, S, H, D] like k.
  """
  checks.check_qkv(q_BTHD, k_BSHD, v_BSHD)
  w = attention_weights(q_BTHD, k_BSHD, **options)
  out = jnp.einsum("bhts,bshd->bthd", w, v_BSHD.astype(jnp.float32)).astype(q_BTHD.dtype)
  return (out, w) if return_weights else out

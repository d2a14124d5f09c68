"""Attention for length generalization: one entry point, several implementations.

    import lengthgen.attention as attn
    out = attn.dot_product_attention(q, k, v, causal=True, bias=attn.AlibiBias(slopes))
"""

from __future__ import annotations

import jax

from lengthgen.attention import reference
from lengthgen.attention.bias import AlibiBias, materialize
from lengthgen.attention.masks import make_mask

NORMALIZERS = ("softmax",)
IMPLEMENTATIONS = ("auto", "xla")


def dot_product_attention(q_BTHD, k_BSHD, v_BSHD, *, normalizer="softmax", causal=True,
                          window=None, global_tokens=0, bias=None, q_positions=None,
                          k_positions=None, scale=None, implementation="auto", lengths=None,
                          return_weights=False):
  """Multi-head attention with length-generalization variants.

  Args:
    q_BTHD, k_BSHD, v_BSHD: queries, keys, values (same head count and head dim).
    normalizer: how scores become weights; one of ``NORMALIZERS``.
    causal: query i sees keys j <= i (queries aligned to the end of the keys).
    window, global_tokens: sliding window; with global tokens, LM-Infinite's Lambda mask.
    bias: None, a bias spec (``AlibiBias``) or a dense [B|1, H, T, S] array.
    q_positions, k_positions: [B, T] / [B, S] positions used by bias specs.
    scale: score scale, default 1/sqrt(D).
    implementation: "auto" or "xla" (the reference).
    lengths: [B] valid keys per example (right padding is masked).
    return_weights: also return the attention weights [B, H, T, S] (reference only).

  Returns:
    [B, T, H, D] in q's dtype, or (output, weights) with ``return_weights``.
  """
  if normalizer not in NORMALIZERS:
    raise ValueError(f"unknown normalizer {normalizer!r}; valid normalizers: "
                     f"{', '.join(NORMALIZERS)}")
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"unknown implementation {implementation!r}; valid implementations: "
                     f"{', '.join(IMPLEMENTATIONS)}")
  if q_BTHD.ndim != 4 or k_BSHD.shape != v_BSHD.shape or q_BTHD.shape[0] != k_BSHD.shape[0] \
      or q_BTHD.shape[2:] != k_BSHD.shape[2:]:
    raise ValueError(f"expected q [B,T,H,D] and k, v [B,S,H,D]; got q {q_BTHD.shape}, "
                     f"k {k_BSHD.shape}, v {v_BSHD.shape}")
  return reference.attention(q_BTHD, k_BSHD, v_BSHD, causal=causal, window=window,
                             global_tokens=global_tokens, bias=bias, q_positions=q_positions,
                             k_positions=k_positions, scale=scale, lengths=lengths,
                             return_weights=return_weights)


__all__ = ["AlibiBias", "IMPLEMENTATIONS", "NORMALIZERS", "dot_product_attention",
           "make_mask", "materialize"]

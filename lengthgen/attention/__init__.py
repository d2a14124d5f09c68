"""Attention for length generalization: one entry point, several implementations.

    import lengthgen.attention as attn
    out = attn.dot_product_attention(q, k, v, causal=True, bias=attn.AlibiBias(slopes))

Implementations: ``xla`` (the reference: dense, defines the semantics), ``xla_blockwise``
(the same math one query block at a time: O(T * block) memory), ``pallas`` and ``interpret``
(the Pallas kernels of ``lengthgen.kernels``, on hardware or in interpret mode; an
unsupported variant is an error, never a silent fallback) and ``auto``: the kernel where the
platform (GPU/TPU) supports the variant, otherwise the reference, blockwise once T * S exceeds
``BLOCKWISE_THRESHOLD``.

Normalizers are objects in the registry ``NORMALIZERS`` (name -> ``Normalizer``, see
``lengthgen.attention.normalizers``); each declares its learned parameters and options:

    ssmax = attn.NORMALIZERS["ssmax"]                       # ssmax.defaults["init"] == 0.43
    params = attn.init_normalizer_params("ssmax", num_heads)  # {"ssmax_scale": [H]}
    out = attn.dot_product_attention(q, k, v, normalizer="ssmax", normalizer_params=params)
"""

from __future__ import annotations

import importlib
import inspect

import jax

from lengthgen.attention import blockwise, normalizers, reference
from lengthgen.attention.bias import AlibiBias, RelativeBias, materialize
from lengthgen.attention.masks import make_mask
from lengthgen.attention.normalizers import NORMALIZERS, Normalizer

IMPLEMENTATIONS = ("auto", "xla", "xla_blockwise", "pallas", "interpret")
BLOCKWISE_THRESHOLD = 2048 * 2048  # T * S above which "auto" uses the blockwise reference


def _kernels_module(implementation: str, *, required: bool):
  """``lengthgen.kernels``, or None when it does not exist and is not ``required``.

  A kernel package that exists but fails to import is always an error, even for "auto".
  """
  try:
    return importlib.import_module("lengthgen.kernels")
  except ImportError as e:
    if not required and isinstance(e, ModuleNotFoundError) and e.name == "lengthgen.kernels":
      return None
    raise ValueError(f"implementation {implementation!r} needs lengthgen.kernels, which could "
                     f"not be imported: {e}") from e


def _kernel_support(kernels, options) -> tuple[bool, str]:
  """``kernels.supports(**options)``; an option the kernels do not take is unsupported."""
  params = inspect.signature(kernels.supports).parameters
  if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
    missing = [name for name in options if name not in params]
    if missing:
      return False, f"lengthgen.kernels does not take the option(s) {missing}"
  return kernels.supports(**options)


def init_normalizer_params(name: str, num_heads: int, options=None, *, modifiers=()):
  """Initial learned parameters of normalizer ``name``: float32 arrays by name.

  Args:
    name: one of ``NORMALIZERS``.
    num_heads: the number of heads H.
    options: the normalizer's options (e.g. ssmax's ``init``).
    modifiers: modifiers to turn on (e.g. softmax's ``"length_temperature"``).
  """
  return normalizers.get(name).init_params(num_heads, options, modifiers=modifiers)


def dot_product_attention(q_BTHD, k_BSHD, v_BSHD, *, normalizer="softmax",
                          normalizer_params=None, normalizer_options=None, causal=True,
                          window=None, global_tokens=0, bias=None, q_positions=None,
                          k_positions=None, scale=None, implementation="auto", lengths=None,
                          return_weights=False, block_size=512, q_capped=None):
  """Multi-head attention with length-generalization variants.

  Args:
    q_BTHD, k_BSHD, v_BSHD: queries, keys, values (same head count and head dim).
    normalizer: one of ``NORMALIZERS`` (see ``lengthgen.attention.normalizers``).
    normalizer_params: the normalizer's learned arrays by name (``init_normalizer_params``),
      e.g. ssmax's ``ssmax_scale`` [H] or softmax's length temperature ``length_scale`` [H];
      None entries count as absent.
    normalizer_options: the normalizer's options, e.g. ``{"power": 15.0}`` for
      ``softplus_reweight``; unset ones take the normalizer's defaults.
    causal: query i sees keys j <= i (queries aligned to the end of the keys).
    window, global_tokens: sliding window; with global tokens, LM-Infinite's Lambda mask.
    bias: None, ``AlibiBias``, ``RelativeBias`` or a dense [B|1, H, T, S] array.
    q_positions, k_positions: [B, T] / [B, S] positions used by bias specs.
    scale: score scale for the softmax family, default 1/sqrt(D).
    implementation: one of ``IMPLEMENTATIONS``.
    lengths: [B] valid keys per example (right padding is masked).
    return_weights: also return the weights [B, H, T, S] (dense reference only).
    block_size: query block of the blockwise reference.
    q_capped: LM-Infinite's distance cap for rotate-type encodings: queries rotated at
      position ``window``, used for global tokens beyond the window (see ``reference``).

  Returns:
    [B, T, H, D] in q's dtype, or (output, weights) with ``return_weights``.
  """
  norm = normalizers.get(normalizer)
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"unknown implementation {implementation!r}; valid implementations: "
                     f"{', '.join(IMPLEMENTATIONS)}")
  if q_BTHD.ndim != 4 or k_BSHD.shape != v_BSHD.shape or q_BTHD.shape[0] != k_BSHD.shape[0] \
      or q_BTHD.shape[2:] != k_BSHD.shape[2:]:
    raise ValueError(f"expected q [B,T,H,D] and k, v [B,S,H,D]; got q {q_BTHD.shape}, "
                     f"k {k_BSHD.shape}, v {v_BSHD.shape}")
  params = norm.checked_params(normalizer_params)
  options = dict(normalizer=normalizer, causal=causal, window=window,
                 global_tokens=global_tokens, bias=bias, q_positions=q_positions,
                 k_positions=k_positions, scale=scale, lengths=lengths)
  # Variant parameters are passed only when they are in use, so a kernel that does not know
  # one is never asked for it (and an unknown one makes the variant unsupported, see
  # ``_kernel_support``).
  extras = dict(normalizer_params=params or None,
                normalizer_options=norm.resolve_options(normalizer_options) or None,
                q_capped=q_capped)
  options.update({name: value for name, value in extras.items() if value is not None})
  t, s = q_BTHD.shape[1], k_BSHD.shape[1]
  if implementation in ("pallas", "interpret"):
    if return_weights:
      raise ValueError("the Pallas kernels do not return attention weights; use 'xla'")
    kernels = _kernels_module(implementation, required=True)
    ok, reason = _kernel_support(kernels, options)
    if not ok:
      raise ValueError(f"implementation {implementation!r} does not support this variant: "
                       f"{reason}")
    return kernels.flash_attention(q_BTHD, k_BSHD, v_BSHD,
                                   interpret=implementation == "interpret", **options)
  if implementation == "auto" and not return_weights and jax.default_backend() in ("gpu", "tpu"):
    kernels = _kernels_module(implementation, required=False)
    if kernels is not None and _kernel_support(kernels, options)[0]:
      return kernels.flash_attention(q_BTHD, k_BSHD, v_BSHD, interpret=False, **options)
  blockwise_wanted = implementation == "xla_blockwise" or (
      implementation == "auto" and not return_weights and t * s > BLOCKWISE_THRESHOLD)
  if blockwise_wanted:
    return blockwise.blockwise_attention(q_BTHD, k_BSHD, v_BSHD, block_size=block_size,
                                         return_weights=return_weights, **options)
  return reference.attention(q_BTHD, k_BSHD, v_BSHD, return_weights=return_weights, **options)


__all__ = ["AlibiBias", "BLOCKWISE_THRESHOLD", "IMPLEMENTATIONS", "NORMALIZERS", "Normalizer",
           "RelativeBias", "dot_product_attention", "init_normalizer_params", "make_mask",
           "materialize"]

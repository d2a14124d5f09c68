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

    params = attn.init_normalizer_params("ssmax", num_heads)  # {"ssmax_scale": [H]}
    out = attn.dot_product_attention(q, k, v, normalizer="ssmax", normalizer_params=params)

ssmax's per-head s starts at ``SSMAX_INIT`` (0.43); ``init_ssmax_scale(H)`` makes it as an
array and ``ssmax_scale_param(self, H)`` declares it in a linen module
(``declare_normalizer_params`` does so for any normalizer, as ``MultiHeadAttention`` does).

Array arguments are checked against q [B, T, H, D], k and v [B, S, H, D] at every entry point
(``dot_product_attention``, ``reference.attention``, ``blockwise.blockwise_attention``); see
``lengthgen.attention.checks`` for what a wrong layout is caught by and what cannot be caught.
"""

from __future__ import annotations

import importlib
import inspect

import jax
import jax.numpy as jnp

from lengthgen.attention import blockwise, checks, masks, normalizers, reference
from lengthgen.attention.bias import AlibiBias, RelativeBias, materialize
from lengthgen.attention.masks import make_mask
from lengthgen.attention.normalizers import NORMALIZERS, SSMAX_INIT, Normalizer

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
  """Initial learned parameters of normalizer ``name``: float32 arrays by name (plain JAX).

  Args:
    name: one of ``NORMALIZERS``.
    num_heads: the number of heads H.
    options: the normalizer's options (e.g. ssmax's ``init``); default its defaults.
    modifiers: modifiers to turn on (e.g. softmax's ``"length_temperature"``); default none.

  Returns:
    {name: float32 array of the parameter's shape}, e.g. {"ssmax_scale": [H]}; empty for a
    normalizer without parameters.
  """
  return normalizers.get(name).init_params(num_heads, options, modifiers=modifiers)


def _constant_init(value: float):
  def init(key, shape, dtype=jnp.float32):
    del key
    return jnp.full(shape, value, dtype)
  return init


def declare_normalizer_params(module, name: str, num_heads: int, options=None, *,
                              modifiers=()) -> dict[str, jax.Array]:
  """Declares normalizer ``name``'s learned parameters in a linen module; returns them.

  Call it inside the module's ``@nn.compact`` method (``module`` is ``self``); each parameter
  is ``module.param(name, constant initial value, shape)``, float32, under its own name
  (``ssmax_scale``, ``length_scale``). ``init_normalizer_params`` gives the same initial
  values as plain arrays.

  Args:
    module: the linen module that owns the parameters (anything with linen's ``param``).
    name, num_heads, options, modifiers: as in ``init_normalizer_params``.

  Returns:
    {name: the parameter's current value}, to pass as ``normalizer_params``.
  """
  norm = normalizers.get(name)
  options = norm.resolve_options(options)
  return {p.name: module.param(p.name, _constant_init(p.initial_value(options)),
                               p.shape(num_heads))
          for p in norm.param_specs(modifiers)}


def init_ssmax_scale(num_heads: int, init: float = SSMAX_INIT) -> jax.Array:
  """ssmax's per-head s as an array: float32 [num_heads] filled with ``init`` (0.43)."""
  return init_normalizer_params("ssmax", num_heads, {"init": init})["ssmax_scale"]


def ssmax_scale_param(module, num_heads: int, init: float = SSMAX_INIT) -> jax.Array:
  """Declares ssmax's per-head s in a linen module (inside ``@nn.compact``): float32 [H].

  The parameter is named ``ssmax_scale`` and starts at ``init`` (default ``SSMAX_INIT``,
  0.43). Pass it as ``normalizer_params={"ssmax_scale": s}`` with ``normalizer="ssmax"``.
  """
  return declare_normalizer_params(module, "ssmax", num_heads, {"init": init})["ssmax_scale"]


def dot_product_attention(q_BTHD, k_BSHD, v_BSHD, *, normalizer="softmax",
                          normalizer_params=None, normalizer_options=None, causal=True,
                          window=None, global_tokens=0, bias=None, q_positions=None,
                          k_positions=None, scale=None, implementation="auto", lengths=None,
                          return_weights=False, block_size=512, q_capped=None):
  """Multi-head attention with length-generalization variants.

  Args:
    q_BTHD, k_BSHD, v_BSHD: queries [B, T, H, D], keys and values [B, S, H, D] (same B, H,
      D; any float dtype). Not [B, H, T, D]: see ``checks`` for what catches that layout.
    normalizer: one of ``NORMALIZERS`` (default "softmax"; see ``normalizers``).
    normalizer_params: the normalizer's learned arrays by name (``init_normalizer_params``),
      each of its declared shape, e.g. ssmax's ``ssmax_scale`` float32 [H] or softmax's
      length temperature ``length_scale`` [H]; None entries count as absent.
    normalizer_options: the normalizer's options, e.g. ``{"power": 15.0}`` for
      ``softplus_reweight``; unset ones take the normalizer's defaults.
    causal: query i sees keys j <= i (queries aligned to the end of the keys); default True.
    window: sliding window, an integer >= 1 (int, numpy integer or concrete 0-d integer
      array; floats and bools are errors) or None (default: no window).
    global_tokens: with ``window``, LM-Infinite's Lambda mask: the first keys stay visible;
      an integer >= 0, default 0.
    bias: None, ``AlibiBias`` (slopes [H]), ``RelativeBias`` (table [H, buckets]) or a dense
      [B|1, H|1, T, S] array added to the scores.
    q_positions, k_positions: int [B, T] / [B, S] positions used by bias specs; default
      0..S-1 for keys and the last T of them for queries.
    scale: score scale for the softmax family, default None (1/sqrt(D)); the softplus
      normalizers take none (LSSA's scaling is fixed) and raise ``ValueError`` for one.
    implementation: one of ``IMPLEMENTATIONS`` (default "auto").
    lengths: int [B] valid keys per example (right padding is masked); default all.
    return_weights: also return the float32 weights [B, H, T, S] (dense reference only).
    block_size: query block of the blockwise reference (default 512).
    q_capped: LM-Infinite's distance cap for rotate-type encodings, q's shape: queries
      rotated at position ``window`` (``Encoding.capped_query`` builds them), used for
      global tokens beyond the window (see ``reference``).

  Returns:
    [B, T, H, D] in q's dtype, or (output, weights) with ``return_weights``.

  Raises:
    ValueError: an unknown name, a bad option, or an argument whose shape or type does not
      fit (the message names it, with the expected and the actual shape).
  """
  norm = normalizers.get(normalizer)
  if implementation not in IMPLEMENTATIONS:
    raise ValueError(f"unknown implementation {implementation!r}; valid implementations: "
                     f"{', '.join(IMPLEMENTATIONS)}")
  _, t, s, h, _ = checks.check_inputs(q_BTHD, k_BSHD, v_BSHD, q_positions=q_positions,
                                      k_positions=k_positions, lengths=lengths, bias=bias,
                                      q_capped=q_capped)
  window = masks.as_window(window)
  global_tokens = masks.as_int(global_tokens, "global_tokens", minimum=0)
  norm.check_scale(scale)
  params = norm.checked_params(normalizer_params, num_heads=h)
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
           "RelativeBias", "SSMAX_INIT", "declare_normalizer_params", "dot_product_attention",
           "init_normalizer_params", "init_ssmax_scale", "make_mask", "materialize",
           "ssmax_scale_param"]

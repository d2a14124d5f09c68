"""Dispatch of ``dot_product_attention`` between the reference, blockwise and kernel paths.

A stand-in ``lengthgen.kernels`` (installed in ``sys.modules``) records what it is asked, so
these tests pin the contract with the Pallas kernels without needing them.
"""

from __future__ import annotations

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
from lengthgen.attention import blockwise


def _fake_kernels(calls, *, takes_ssmax=False):
  """A kernel module supporting causal softmax (and ssmax, whose s it takes, if asked).

  Without ``takes_ssmax``, ``supports`` has the brief's exact signature (no **kwargs).
  """
  def supports_base(*, normalizer, causal, window, global_tokens, bias, q_positions,
                    k_positions, scale, lengths):
    if normalizer != "softmax" or not causal:
      return False, "only causal softmax"
    return True, ""

  def supports_ssmax(*, normalizer, ssmax_scale=None, **options):
    if normalizer == "ssmax" and ssmax_scale is not None:
      return options["causal"], "only causal"
    return supports_base(normalizer=normalizer, **options)

  def flash_attention(q, k, v, *, interpret, **options):
    calls.append(dict(interpret=interpret, **options))
    return jnp.full(q.shape, 7.0, q.dtype)  # recognizable: not what the reference returns

  return types.SimpleNamespace(supports=supports_ssmax if takes_ssmax else supports_base,
                               flash_attention=flash_attention)


def _qkv(t=6):
  r = jax.random.split(jax.random.key(0), 3)
  return [jax.random.normal(x, (1, t, 2, 8)) for x in r]


def test_missing_kernel_package_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", None)  # import fails
  q, k, v = _qkv()
  for implementation in ("pallas", "interpret"):
    with pytest.raises(ValueError, match="needs lengthgen.kernels"):
      attn.dot_product_attention(q, k, v, implementation=implementation)


@pytest.mark.parametrize("implementation", ["pallas", "interpret"])
def test_pallas_and_interpret_call_the_kernel_or_raise(monkeypatch, implementation):
  calls = []
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", _fake_kernels(calls))
  q, k, v = _qkv()
  out = attn.dot_product_attention(q, k, v, implementation=implementation, window=3)
  assert (np.asarray(out) == 7.0).all()
  assert calls[-1]["interpret"] == (implementation == "interpret")
  assert calls[-1]["window"] == 3 and calls[-1]["normalizer"] == "softmax"
  assert "ssmax_scale" not in calls[-1] and "reweight_power" not in calls[-1]
  with pytest.raises(ValueError, match="does not support this variant: only causal softmax"):
    attn.dot_product_attention(q, k, v, implementation=implementation, normalizer="softplus")
  # A variant parameter the kernels do not take is unsupported, never silently dropped.
  with pytest.raises(ValueError, match=r"does not take the option\(s\) \['ssmax_scale'\]"):
    attn.dot_product_attention(q, k, v, implementation=implementation, normalizer="ssmax",
                               ssmax_scale=jnp.ones(2))
  with pytest.raises(ValueError, match="do not return attention weights"):
    attn.dot_product_attention(q, k, v, implementation=implementation, return_weights=True)
  assert len(calls) == 1


def test_kernels_receive_variant_parameters_they_take(monkeypatch):
  calls = []
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", _fake_kernels(calls, takes_ssmax=True))
  q, k, v = _qkv()
  s = jnp.asarray([0.5, 2.0])
  attn.dot_product_attention(q, k, v, implementation="pallas", normalizer="ssmax",
                             ssmax_scale=s)
  np.testing.assert_array_equal(np.asarray(calls[-1]["ssmax_scale"]), np.asarray(s))


@pytest.mark.parametrize("backend", ["cpu", "gpu", "tpu"])
def test_auto_uses_the_kernel_only_on_accelerators_when_supported(monkeypatch, backend):
  calls = []
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", _fake_kernels(calls))
  monkeypatch.setattr(jax, "default_backend", lambda: backend)
  q, k, v = _qkv()
  ref = attn.dot_product_attention(q, k, v, implementation="xla", normalizer="softplus")
  out = attn.dot_product_attention(q, k, v, implementation="auto")
  assert (np.asarray(out) == 7.0).all() == (backend != "cpu")
  # Unsupported on the kernel: "auto" computes the reference.
  out = attn.dot_product_attention(q, k, v, implementation="auto", normalizer="softplus")
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-6)
  # Attention maps always come from the dense reference.
  _, w = attn.dot_product_attention(q, k, v, implementation="auto", return_weights=True)
  assert w.shape == (1, 2, 6, 6)
  assert len(calls) == (backend != "cpu")


def test_auto_without_kernel_package_uses_the_reference(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", None)  # as if it were not installed
  q, k, v = _qkv()
  out = attn.dot_product_attention(q, k, v, implementation="auto")
  ref = attn.dot_product_attention(q, k, v, implementation="xla")
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-6)


def test_auto_goes_blockwise_above_the_threshold(monkeypatch):
  shapes = []
  original = blockwise.blockwise_attention
  monkeypatch.setattr(blockwise, "blockwise_attention",
                      lambda *a, **kw: shapes.append(a[0].shape) or original(*a, **kw))
  monkeypatch.setattr(attn, "BLOCKWISE_THRESHOLD", 6 * 6 - 1)
  q, k, v = _qkv()
  out = attn.dot_product_attention(q, k, v, implementation="auto", block_size=4)
  ref = attn.dot_product_attention(q, k, v, implementation="xla")
  assert shapes == [q.shape]
  np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-6)
  attn.dot_product_attention(q[:, :5], k[:, :5], v[:, :5], implementation="auto")
  assert len(shapes) == 1, "at or below the threshold the dense reference is used"


def test_unknown_names_list_the_valid_ones():
  q, k, v = _qkv()
  with pytest.raises(ValueError, match="valid normalizers: softmax, ssmax, softplus"):
    attn.dot_product_attention(q, k, v, normalizer="sparsemax")
  with pytest.raises(ValueError, match="valid implementations: auto, xla, xla_blockwise"):
    attn.dot_product_attention(q, k, v, implementation="cudnn")

"""Dispatch of ``dot_product_attention`` between the reference, blockwise and kernel paths,
and the normalizer registry it dispatches on.

A stand-in ``lengthgen.kernels`` (installed in ``sys.modules``) records what it is asked, so
these tests pin the contract with the Pallas kernels without needing them.
"""

from __future__ import annotations

import math
import sys
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
from lengthgen.attention import blockwise, normalizers
from lengthgen.attention.layer import AttentionSpec, MultiHeadAttention, validate_attention_config


def _fake_kernels(calls, *, takes_ssmax=False):
  """A kernel module supporting causal softmax (and ssmax, whose params it takes, if asked).

  Without ``takes_ssmax``, ``supports`` has the brief's exact signature (no **kwargs).
  """
  def supports_base(*, normalizer, causal, window, global_tokens, bias, q_positions,
                    k_positions, scale, lengths):
    if normalizer != "softmax" or not causal:
      return False, "only causal softmax"
    return True, ""

  def supports_ssmax(*, normalizer, normalizer_params=None, normalizer_options=None,
                     **options):
    if normalizer == "ssmax" and "ssmax_scale" in (normalizer_params or {}):
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
  assert "normalizer_params" not in calls[-1] and "normalizer_options" not in calls[-1]
  with pytest.raises(ValueError, match="does not support this variant: only causal softmax"):
    attn.dot_product_attention(q, k, v, implementation=implementation, normalizer="softplus")
  # A variant parameter the kernels do not take is unsupported, never silently dropped.
  with pytest.raises(ValueError, match=r"does not take the option\(s\) \['normalizer_params', "
                                       r"'normalizer_options'\]"):
    attn.dot_product_attention(q, k, v, implementation=implementation, normalizer="ssmax",
                               normalizer_params={"ssmax_scale": jnp.ones(2)})
  with pytest.raises(ValueError, match="do not return attention weights"):
    attn.dot_product_attention(q, k, v, implementation=implementation, return_weights=True)
  assert len(calls) == 1


def test_kernels_receive_variant_parameters_they_take(monkeypatch):
  calls = []
  monkeypatch.setitem(sys.modules, "lengthgen.kernels", _fake_kernels(calls, takes_ssmax=True))
  q, k, v = _qkv()
  s = jnp.asarray([0.5, 2.0])
  attn.dot_product_attention(q, k, v, implementation="pallas", normalizer="ssmax",
                             normalizer_params={"ssmax_scale": s},
                             normalizer_options={"init": 0.5})
  np.testing.assert_array_equal(np.asarray(calls[-1]["normalizer_params"]["ssmax_scale"]),
                                np.asarray(s))
  assert calls[-1]["normalizer_options"] == {"init": 0.5}


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


# The normalizer registry: each object declares its parameters and options, and a new one
# works through every implementation and the layer with no other code.

H, T, D = 2, 6, 8


@pytest.mark.parametrize("name", list(attn.NORMALIZERS))
def test_every_normalizer_builds_its_declared_params(name):
  norm = attn.NORMALIZERS[name]
  assert norm.name == name and name in attn.NORMALIZERS
  modifiers = norm.modifiers
  params = attn.init_normalizer_params(name, 5, modifiers=modifiers)
  assert sorted(params) == sorted(p.name for p in norm.params)
  for p in norm.params:
    want = norm.defaults[p.init_option] if p.init_option else p.init
    chex.assert_trees_all_equal(params[p.name], jnp.full(p.shape(5), want, jnp.float32))
  required = attn.init_normalizer_params(name, 5)
  assert sorted(required) == sorted(p.name for p in norm.params if p.modifier is None)


def test_declared_initial_values_and_defaults():
  assert attn.NORMALIZERS["ssmax"].defaults == {"init": 0.43}
  assert attn.NORMALIZERS["softplus_reweight"].defaults == {"power": 15.0}
  chex.assert_trees_all_equal(attn.init_normalizer_params("ssmax", 2),
                              {"ssmax_scale": jnp.full((2,), 0.43, jnp.float32)})
  chex.assert_trees_all_equal(attn.init_normalizer_params("ssmax", 2, {"init": 1.5}),
                              {"ssmax_scale": jnp.full((2,), 1.5, jnp.float32)})
  chex.assert_trees_all_equal(
      attn.init_normalizer_params("softmax", 3, modifiers=("length_temperature",)),
      {"length_scale": jnp.zeros((3,), jnp.float32)})
  assert attn.init_normalizer_params("softplus", 3) == {}
  with pytest.raises(ValueError, match="no modifier.*'length_temperature'.*none"):
    attn.init_normalizer_params("ssmax", 3, modifiers=("length_temperature",))


def test_check_options_names_unknown_options_and_bad_values():
  with pytest.raises(ValueError, match=r"unknown option\(s\) \['foo'\] for normalizer "
                                       r"'ssmax'; valid options: \['init'\]"):
    attn.NORMALIZERS["ssmax"].check_options({"foo": 1, "init": 0.5})
  with pytest.raises(ValueError, match=r"\['power'\].*valid options: none"):
    attn.NORMALIZERS["softmax"].check_options({"power": 2})
  for bad in (0, -1.0, "15", True):
    with pytest.raises(ValueError, match="^power must be a positive number") as e:
      attn.NORMALIZERS["softplus_reweight"].check_options({"power": bad})
    assert e.value.option == "power"
  attn.NORMALIZERS["softplus_reweight"].check_options({"power": 3})
  with pytest.raises(ValueError, match="has no parameter.*'gain'.*'ssmax_scale'"):
    attn.dot_product_attention(*(jnp.ones((1, 4, 1, 8)),) * 3, normalizer="ssmax",
                               normalizer_params={"ssmax_scale": jnp.ones(1), "gain": 1.0})


def _toy_weights(scores, mask, n_visible, *, params, options, query_index):
  """relu(gain_h * score + shift) ** 2, L1-normalized per row."""
  del n_visible, query_index
  gain = jnp.asarray(params["gain"], jnp.float32)[None, :, None, None]
  w = jnp.where(mask, jax.nn.relu(gain * scores + options["shift"]) ** 2, 0.0)
  denom = jnp.sum(w, axis=-1, keepdims=True)
  return w / jnp.where(denom == 0, 1.0, denom)


TOY = normalizers.Normalizer(
    "toy", _toy_weights, normalizers.scaled_dot_scores,
    params=(normalizers.Param("gain", "per-head gain, shape [H]", init=2.0),),
    options=(normalizers.Option("shift", 0.5, normalizers.is_number, "a number"),))


def test_a_registered_toy_normalizer_works_everywhere(monkeypatch):
  """One object plus one registry entry: dispatch, reference, blockwise, layer, validation."""
  monkeypatch.setitem(attn.NORMALIZERS, "toy", TOY)
  q, k, v = _qkv(T)
  params = attn.init_normalizer_params("toy", H)
  chex.assert_trees_all_equal(params, {"gain": jnp.full((H,), 2.0, jnp.float32)})
  qd, kd, vd = (np.asarray(x, np.float64) for x in (q, k, v))
  logits = np.einsum("bthd,bshd->bhts", qd, kd) / math.sqrt(D)
  w = np.maximum(2.0 * logits + 0.25, 0.0) ** 2 * np.tril(np.ones((T, T)))
  denom = w.sum(-1, keepdims=True)
  want = np.einsum("bhts,bshd->bthd", w / np.where(denom == 0, 1.0, denom), vd)

  def loss(params, implementation):
    out = attn.dot_product_attention(q, k, v, normalizer="toy", normalizer_params=params,
                                     normalizer_options={"shift": 0.25}, block_size=4,
                                     implementation=implementation)
    return jnp.sum(jnp.sin(out)), out

  (_, out_xla), g_xla = jax.value_and_grad(loss, has_aux=True)(params, "xla")
  (_, out_blk), g_blk = jax.value_and_grad(loss, has_aux=True)(params, "xla_blockwise")
  np.testing.assert_allclose(np.asarray(out_xla), want, atol=2e-4, rtol=2e-4)
  np.testing.assert_allclose(np.asarray(out_blk), want, atol=2e-4, rtol=2e-4)
  chex.assert_trees_all_close(g_blk, g_xla, atol=1e-5, rtol=1e-5)
  assert np.abs(np.asarray(g_xla["gain"])).max() > 0
  with pytest.raises(ValueError, match="needs gain: per-head gain"):
    attn.dot_product_attention(q, k, v, normalizer="toy")
  with pytest.raises(ValueError, match="shift must be a number"):
    attn.dot_product_attention(q, k, v, normalizer="toy", normalizer_params=params,
                               normalizer_options={"shift": "x"})
  # The layer creates the declared parameter under its name, with its initial value.
  layer = MultiHeadAttention(AttentionSpec(num_heads=H, head_dim=D, normalizer="toy"))
  x = jnp.ones((1, 5, 16))
  variables = layer.init(jax.random.key(0), x, positions_BT=jnp.arange(5)[None])
  assert set(variables["params"]) == {"query", "key", "value", "out", "gain"}
  chex.assert_trees_all_equal(variables["params"]["gain"], params["gain"])
  validate_attention_config(_model_config(normalizer="toy", normalizer_options={"shift": 1}))


def _model_config(**fields):
  """A duck-typed stand-in for ModelConfig with the attention fields."""
  base = dict(normalizer="softmax", normalizer_options={}, window=None, global_tokens=0,
              length_temperature=False)
  return types.SimpleNamespace(**{**base, **fields})


@pytest.mark.parametrize("fields,message", [
    (dict(normalizer="ssmax", normalizer_options={"power": 2}),
     "config.model.normalizer_options: unknown option(s) ['power'] for normalizer 'ssmax'; "
     "valid options: ['init']"),
    (dict(normalizer="softplus_reweight", normalizer_options={"power": -1}),
     "config.model.normalizer_options.power must be a positive number, got -1"),
    (dict(normalizer="ssmax", length_temperature=True),
     "config.model.length_temperature applies to the softmax normalizer only; got normalizer "
     "'ssmax'"),
    (dict(global_tokens=2), "config.model.global_tokens needs config.model.window"),
    (dict(window=0), "config.model.window must be a positive integer or None, got 0"),
])
def test_validate_attention_config_names_the_field(fields, message):
  with pytest.raises(ValueError) as e:
    validate_attention_config(_model_config(**fields))
  assert str(e.value).startswith(message), str(e.value)
  validate_attention_config(_model_config(normalizer="ssmax", normalizer_options={"init": 1}))
  validate_attention_config(_model_config(length_temperature=True))


@pytest.mark.parametrize("spec_fields,extra_params", [
    (dict(normalizer="ssmax", normalizer_options={"init": 0.7}), {"ssmax_scale": 0.7}),
    (dict(length_temperature=True, qk_norm=True), {"length_scale": 0.0}),
    (dict(normalizer="softplus_reweight", normalizer_options={"power": 4}), {}),
])
def test_layer_params_are_those_the_normalizer_declares(spec_fields, extra_params):
  spec = AttentionSpec(num_heads=H, head_dim=D, **spec_fields)
  assert hash(spec) == hash(AttentionSpec(num_heads=H, head_dim=D, **spec_fields))
  variables = MultiHeadAttention(spec).init(jax.random.key(0), jnp.ones((1, 5, 16)),
                                            positions_BT=jnp.arange(5)[None])
  names = {"query", "key", "value", "out"} | set(extra_params)
  if spec.qk_norm:
    names |= {"query_norm", "key_norm"}
  assert set(variables["params"]) == names
  for name, value in extra_params.items():
    chex.assert_trees_all_equal(variables["params"][name], jnp.full((H,), value, jnp.float32))

"""Pallas flash attention (interpret mode on CPU) against the reference, values and gradients."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen import kernels
from lengthgen.attention import AlibiBias, RelativeBias, dot_product_attention, reference

H, D = 2, 64
# On a GPU the same checks run the compiled kernels; float32 dots there use TF32 (~1e-3).
ON_GPU = jax.default_backend() == "gpu"


def _inputs(seed, b, t, s, dtype=jnp.float32):
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=(b, n, H, D)), dtype) for n in (t, s, s)]


def _bias(kind, seed=0, bidirectional=False):
  if kind == "alibi":
    return AlibiBias(jnp.asarray(pe.alibi_slopes(H)), bidirectional=bidirectional)
  if kind == "t5":
    table = np.random.default_rng(seed).normal(size=(H, 16))
    return RelativeBias(jnp.asarray(table, jnp.float32), bidirectional=bidirectional,
                        num_buckets=16, max_distance=40)
  return None


def _check(options, *, b=1, t=37, s=45, seed=0, dtype=jnp.float32, atol=2e-5, bias=None):
  """Values and gradients (q, k, v and the T5 table) of the kernel equal the reference."""
  q, k, v = _inputs(seed, b, t, s, dtype)
  table = bias.table_HK if isinstance(bias, RelativeBias) else jnp.zeros(())

  def loss(fn, q, k, v, table):
    bb = bias.replace(table_HK=table) if isinstance(bias, RelativeBias) else bias
    out = fn(q, k, v, bias=bb, **options)
    return jnp.sum(jnp.sin(out.astype(jnp.float32))), out

  ref = lambda *a, **o: reference.attention(*a, **o)  # noqa: E731
  ker = lambda *a, **o: kernels.flash_attention(*a, interpret=not ON_GPU,  # noqa: E731
                                                block_q=16, block_k=16, **o)
  if ON_GPU:
    atol = max(atol, 3e-2 if dtype == jnp.bfloat16 else 1e-2)
  grad = lambda fn: jax.grad(lambda *a: loss(fn, *a), argnums=(0, 1, 2, 3),  # noqa: E731
                             has_aux=True)(q, k, v, table)
  g_ref, out_ref = grad(ref)
  g_ker, out_ker = grad(ker)
  assert out_ker.dtype == q.dtype and out_ker.shape == q.shape
  np.testing.assert_allclose(np.asarray(out_ker, np.float32), np.asarray(out_ref, np.float32),
                             atol=atol, rtol=atol)
  as_f32 = lambda tree: jax.tree.map(lambda x: np.asarray(x, np.float32), tree)  # noqa: E731
  chex.assert_trees_all_close(as_f32(g_ker), as_f32(g_ref), atol=atol * 5, rtol=atol * 5)
  assert float(jnp.max(jnp.abs(g_ref[0]))) > 0  # the comparison is not vacuous


@pytest.mark.parametrize("options,bias_kind", [
    (dict(causal=True, lengths=jnp.array([30, 45])), "alibi"),
    (dict(causal=False, window=8, global_tokens=3), "t5"),
    (dict(normalizer="softplus", causal=True, window=8, global_tokens=3), None),
])
def test_kernel_matches_reference(options, bias_kind):
  b = 2 if "lengths" in options else 1
  _check(options, b=b, bias=_bias(bias_kind, bidirectional=not options["causal"]))


def test_lambda_mask_skips_key_blocks():
  """Key blocks visited per query block: O(window + global) with a Lambda mask, not O(S)."""
  from lengthgen.kernels import flash
  bk, s = 32, 4096
  cfg = flash.Config(normalizer="softmax", causal=True, window=64, global_tokens=10,
                     bias_kind="none", bidirectional=False, num_buckets=1, max_distance=1,
                     q_start=0, seq_k=s, block_q=32, block_k=bk)
  visited = set()
  for q_lo in (0, 1024, 4064):
    ranges = flash._key_ranges(cfg, q_lo, q_lo + 31, s, s // bk)
    blocks = [j for a, z in ranges for j in range(int(a), int(z))]
    assert len(blocks) == len(set(blocks)) <= 4, (q_lo, blocks)
    visited |= {(q_lo, j) for j in blocks}
    assert 0 in blocks and q_lo // bk in blocks  # the global block and the diagonal block
  dense = dataclasses.replace(cfg, window=None, global_tokens=0)
  assert [tuple(map(int, r)) for r in flash._key_ranges(dense, 4064, 4095, s, s // bk)] == [
      (0, s // bk)]


def test_dispatch_interpret_matches_xla():
  q, k, v = _inputs(1, 1, 20, 20)
  opts = dict(normalizer="softplus", causal=False, lengths=jnp.array([13]))
  out = dot_product_attention(q, k, v, implementation="interpret", **opts)
  np.testing.assert_allclose(out, dot_product_attention(q, k, v, implementation="xla", **opts),
                             atol=2e-5)


def test_supports_rejects_with_reason():
  for options, word in [(dict(normalizer="ssmax", normalizer_params={"ssmax_scale": jnp.ones(H)}),
                         "ssmax"),
                        (dict(normalizer_params={"length_scale": jnp.zeros(H)}), "length_scale"),
                        (dict(normalizer="softplus", normalizer_options={"power": 2.0}), "power"),
                        (dict(normalizer="softplus_reweight"), "softplus_reweight"),
                        (dict(bias=jnp.zeros((1, H, 4, 4))), "dense"),
                        (dict(q_capped=jnp.zeros((1, 4, H, D))), "q_capped"),
                        (dict(global_tokens=2), "window")]:
    ok, reason = kernels.supports(**options)
    assert not ok and word in reason, (options, reason)
  assert kernels.supports(normalizer="softplus", window=4, global_tokens=1,
                          bias=_bias("alibi")) == (True, "")
  q, k, v = _inputs(0, 1, 8, 8)
  with pytest.raises(ValueError, match="ssmax"):
    kernels.flash_attention(q, k, v, normalizer="ssmax", interpret=True)


def test_auto_uses_kernels_only_where_validated_and_faster(monkeypatch):
  # On a GPU the kernels are validated (VALIDATED_BACKENDS) but not measured faster, so "auto"
  # must not pick them; on a TPU they are not validated at all; each says why.
  for backend, word in [("gpu", "validated on gpu but not measured faster"),
                        ("tpu", "not validated on tpu")]:
    monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
    ok, reason = kernels.supports(normalizer="softmax")
    assert (ok, backend in kernels.AUTO_BACKENDS) == (False, False) and word in reason, reason
  monkeypatch.setattr(kernels, "AUTO_BACKENDS", ("gpu",))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert kernels.supports(normalizer="softmax") == (True, "")


SWEEP = [
    (dict(causal=True), None, jnp.float32),
    (dict(causal=False), None, jnp.float32),
    (dict(causal=True, window=8), None, jnp.float32),
    (dict(causal=True, window=8, global_tokens=3), "alibi", jnp.float32),
    (dict(causal=False, window=5, global_tokens=17), "alibi", jnp.float32),
    (dict(causal=True), "t5", jnp.float32),
    (dict(normalizer="softplus", causal=True), None, jnp.float32),
    (dict(normalizer="softplus", causal=False, lengths=jnp.array([7])), "t5", jnp.float32),
    (dict(normalizer="softplus", causal=False, window=9, global_tokens=2), "alibi", jnp.float32),
    (dict(causal=True, scale=0.3), "alibi", jnp.bfloat16),
    (dict(normalizer="softplus", causal=True), "t5", jnp.bfloat16),
]


@pytest.mark.slow
@pytest.mark.parametrize("options,bias_kind,dtype", SWEEP)
@pytest.mark.parametrize("t,s", [(37, 45), (16, 16), (50, 11)])
def test_kernel_sweep(options, bias_kind, dtype, t, s):
  atol = 3e-2 if dtype == jnp.bfloat16 else 2e-5
  _check(options, t=t, s=s, dtype=dtype, atol=atol,
         bias=_bias(bias_kind, bidirectional=not options["causal"]))


@pytest.mark.parametrize("bias_kind", [None, "alibi", "t5"])
@pytest.mark.parametrize("options", [
    dict(causal=True), dict(normalizer="softplus", causal=False, lengths=jnp.array([150])),
    dict(causal=True, window=32, global_tokens=3)], ids=["causal", "softplus", "lambda"])
def test_kernels_lower_to_triton_on_cpu(options, bias_kind):
  """The forward and backward kernels lower to Triton for an H100 without one (jax.export)."""
  from jax import export
  gpu_info = pytest.importorskip("jax._src.pallas.triton.gpu_info")
  q = jax.ShapeDtypeStruct((1, 200, H, D), jnp.bfloat16)  # 200: ragged, padded to blocks
  bias = _bias(bias_kind, bidirectional=not options["causal"])
  loss = lambda q, k, v: jnp.sum(kernels.flash_attention(  # noqa: E731
      q, k, v, bias=bias, **options).astype(jnp.float32))
  check = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
  real = gpu_info.get_gpu_info
  gpu_info.get_gpu_info = lambda: type("Info", (), {"compute_capability": 90})()
  try:
    exported = export.export(jax.jit(jax.grad(loss, argnums=(0, 1, 2))), platforms=["cuda"],
                             disabled_checks=[check])(q, q, q)
  finally:
    gpu_info.get_gpu_info = real
  text = exported.mlir_module()
  assert text.count("__gpu$xla.gpu.triton") >= 3  # forward, dq and dk/dv kernels


@pytest.mark.gpu
@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU")
@pytest.mark.parametrize("options", [dict(causal=True), dict(normalizer="softplus")])
def test_kernel_lowers_on_gpu(options):
  q, k, v = _inputs(0, 1, 256, 256, jnp.bfloat16)
  out = kernels.flash_attention(q, k, v, **options)
  ref = reference.attention(q, k, v, **options)
  np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(ref, np.float32),
                             atol=3e-2)

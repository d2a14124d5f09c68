"""Errors at the public attention entry points name the argument and its expected and actual
shape; integer-like windows are accepted; the ssmax parameter helpers."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.attention as attn
import lengthgen.positional as pe
from lengthgen.attention import blockwise, reference

B, T, H, D = 2, 6, 3, 8


def _qkv(seed=0):
  r = np.random.default_rng(seed)
  return tuple(jnp.asarray(r.normal(size=(B, T, H, D)), jnp.float32) for _ in range(3))


POSITIONS = jnp.broadcast_to(jnp.arange(T), (B, T))
ALIBI = attn.AlibiBias(jnp.asarray(pe.alibi_slopes(H)))
ENTRY_POINTS = {
    "dot_product_attention": attn.dot_product_attention,
    "reference": reference.attention,
    "blockwise": lambda q, k, v, **kw: blockwise.blockwise_attention(q, k, v, block_size=4, **kw),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_bhtd_layout_is_caught_by_positions_and_per_head_arguments(entry):
  f = ENTRY_POINTS[entry]
  q, k, v = (jnp.swapaxes(x, 1, 2) for x in _qkv())  # [B, H, T, D]: H = 3 != T = 6
  with pytest.raises(ValueError, match=r"q_positions must have shape \[B, T\] = \[2 \(or 1\), "
                                       r"3\].*got shape \(2, 6\).*is the array \[B, H, T, D\]"):
    f(q, k, v, q_positions=POSITIONS, k_positions=POSITIONS)
  with pytest.raises(ValueError, match=r"AlibiBias.slopes must have shape \(6,\).*got shape "
                                       r"\(3,\)"):
    f(q, k, v, bias=ALIBI)
  with pytest.raises(ValueError, match=r"ssmax_scale must have shape \(6,\).*got shape \(3,\)"):
    f(q, k, v, normalizer="ssmax", normalizer_params={"ssmax_scale": attn.init_ssmax_scale(H)})


def test_wrong_sized_arguments_name_themselves():
  q, k, v = _qkv()
  f = attn.dot_product_attention
  cases = [
      (dict(bias=attn.AlibiBias(jnp.ones(H + 1))), r"AlibiBias.slopes must have shape \(3,\)"),
      (dict(normalizer="ssmax", normalizer_params={"ssmax_scale": jnp.ones((H, 1))}),
       r"ssmax_scale must have shape \(3,\).*got shape \(3, 1\)"),
      (dict(bias=attn.RelativeBias(jnp.zeros((H, 8)), num_buckets=32)),
       r"RelativeBias.table_HK must have shape \(3, 32\)"),
      (dict(bias=jnp.zeros((B, H, T, T + 1))), r"dense attention bias must have shape"),
      (dict(lengths=jnp.asarray([3, 4, 5])), r"lengths must have shape \[B\] = \(2,\)"),
      (dict(k_positions=POSITIONS[:, :4]), r"k_positions must have shape \[B, S\]"),
      (dict(window=3, global_tokens=1, q_capped=q[:, :2]), r"q_capped must have q's shape"),
  ]
  for kwargs, pattern in cases:
    with pytest.raises(ValueError, match=pattern):
      f(q, k, v, **kwargs)
  with pytest.raises(ValueError, match=r"expected q \[B,T,H,D\] and k, v \[B,S,H,D\]"):
    f(q, k, v[..., :4])


def test_window_accepts_integer_likes_and_rejects_floats_and_bools():
  q, k, v = _qkv()
  want = attn.dot_product_attention(q, k, v, window=3)
  for window in (np.int64(3), np.int32(3), jnp.asarray(3), np.asarray(3)):
    np.testing.assert_array_equal(attn.dot_product_attention(q, k, v, window=window), want)
  np.testing.assert_array_equal(reference.attention(q, k, v, window=np.int64(3)), want)
  for window in (3.0, np.float32(3), True, jnp.asarray(3.0), np.asarray([3])):
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
      attn.dot_product_attention(q, k, v, window=window)
  with pytest.raises(ValueError, match="window must be an integer >= 1, got 0"):
    attn.make_mask(T, T, window=np.int64(0))
  with pytest.raises(ValueError, match="window must be a static integer"):
    jax.jit(lambda w: attn.dot_product_attention(q, k, v, window=w))(3)


def test_scale_is_honoured_by_softmax_and_refused_by_softplus():
  q, k, v = _qkv()
  plain = attn.dot_product_attention(q, k, v)
  assert not np.allclose(attn.dot_product_attention(q, k, v, scale=0.1), plain)
  np.testing.assert_allclose(attn.dot_product_attention(q, k, v, scale=D ** -0.5), plain,
                             rtol=1e-6)
  for normalizer in ("softplus", "softplus_reweight"):
    for f in (attn.dot_product_attention, reference.attention):
      with pytest.raises(ValueError, match=f"normalizer '{normalizer}' takes no scale"):
        f(q, k, v, normalizer=normalizer, scale=0.5)


def test_ssmax_parameter_helpers_for_plain_jax_and_linen():
  assert attn.SSMAX_INIT == 0.43 == attn.NORMALIZERS["ssmax"].defaults["init"]
  np.testing.assert_array_equal(attn.init_ssmax_scale(H), np.full(H, 0.43, np.float32))
  assert attn.init_ssmax_scale(H, init=0.5).dtype == jnp.float32

  class Mine(nn.Module):
    @nn.compact
    def __call__(self, q):
      s = attn.ssmax_scale_param(self, H)
      return attn.dot_product_attention(q, q, q, normalizer="ssmax",
                                        normalizer_params={"ssmax_scale": s})

  q, _, _ = _qkv()
  params = Mine().init(jax.random.key(0), q)
  np.testing.assert_array_equal(params["params"]["ssmax_scale"], attn.init_ssmax_scale(H))
  want = attn.dot_product_attention(q, q, q, normalizer="ssmax",
                                    normalizer_params=attn.init_normalizer_params("ssmax", H))
  np.testing.assert_array_equal(Mine().apply(params, q), want)

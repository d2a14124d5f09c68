"""Golden values of the foundation encodings (nope, sinusoidal, learned, rope, alibi).

Each expected value is derived here from the paper's formula, independently of the library.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen.attention import AlibiBias


def test_alibi_slopes_power_of_two_heads():
  # Press et al. 2022: for 8 heads the slopes are 1/2, 1/4, ..., 1/256.
  np.testing.assert_allclose(pe.alibi_slopes(8), [2.0**-i for i in range(1, 9)], rtol=0)
  # 16 heads: geometric sequence starting at 2^(-8/16) = 2^-0.5 with the same ratio.
  np.testing.assert_allclose(pe.alibi_slopes(16), [2.0 ** (-0.5 * i) for i in range(1, 17)],
                             rtol=1e-6)


def test_alibi_slopes_other_head_counts_follow_the_official_recursion():
  # 12 heads: the 8 slopes of 8 heads, then every other slope of 16 heads: 2^-0.5, 2^-1.5, ...
  expected = [2.0**-i for i in range(1, 9)] + [2.0 ** -(i + 0.5) for i in range(4)]
  np.testing.assert_allclose(pe.alibi_slopes(12), expected, rtol=1e-6)
  # 6 heads: 1/4, 1/16, 1/64, 1/256 (4 heads), then 1/2, 1/8 (every other of 8 heads).
  np.testing.assert_allclose(pe.alibi_slopes(6), [4.0**-1, 4.0**-2, 4.0**-3, 4.0**-4, 0.5, 0.125])
  assert not np.allclose(pe.alibi_slopes(6), [2.0 ** (-8 / 6 * i) for i in range(1, 7)]), (
      "the 2^(-8/n) prose is only right for powers of two")


def test_alibi_bias_is_slope_times_key_minus_query_and_unscaled():
  slopes = jnp.asarray([0.5, 0.25])
  pos = jnp.arange(4)[None]
  dense = np.asarray(AlibiBias(slopes).dense(pos, pos))
  assert dense.shape == (1, 2, 4, 4)
  assert dense[0, 0, 3, 0] == -1.5 and dense[0, 1, 3, 1] == -0.5 and dense[0, 0, 2, 2] == 0
  sym = np.asarray(AlibiBias(slopes, bidirectional=True).dense(pos, pos))
  assert sym[0, 0, 0, 3] == -1.5 and sym[0, 0, 3, 0] == -1.5


def test_sinusoidal_matches_vaswani_formula():
  width = 8
  positions = jnp.asarray([[0, 1, 7, 100]])
  table = np.asarray(pe.sinusoidal_table(positions, width))
  for p_i, p in enumerate([0, 1, 7, 100]):
    for i in range(width // 2):
      angle = p / 10000 ** (2 * i / width)
      assert table[0, p_i, 2 * i] == pytest.approx(math.sin(angle), abs=1e-5)
      assert table[0, p_i, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-5)


def test_learned_embedding_is_a_table_lookup():
  module = pe.get("learned", max_length=5).embedding(4)
  positions = jnp.asarray([[0, 3, 4]])
  params = module.init(jax.random.key(0), positions)
  table = np.asarray(params["params"]["table"])
  assert table.shape == (5, 4)
  np.testing.assert_array_equal(np.asarray(module.apply(params, positions))[0], table[[0, 3, 4]])
  assert np.isnan(np.asarray(module.apply(params, jnp.asarray([[5]])))).all(), (
      "beyond the table the result is poisoned, never wrapped or clamped")


def test_rope_inverse_frequencies():
  inv = pe.rope_inv_frequencies(8, base=10000.0)
  np.testing.assert_allclose(inv, [1.0, 0.1, 0.01, 0.001], rtol=1e-6)
  assert inv.dtype == np.float32


@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_rope_rotates_channel_pairs(layout):
  d = 4
  x = jnp.asarray([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, d)
  inv = np.asarray([0.5, 0.25], np.float32)
  p = 3
  out = np.asarray(pe.apply_rope(x, jnp.asarray([[p]]), inv, layout=layout))[0, 0, 0]
  pairs = [(0, 2), (1, 3)] if layout == "half" else [(0, 1), (2, 3)]
  x = np.asarray(x)[0, 0, 0]
  for f, (a, b) in enumerate(pairs):
    c, s = math.cos(p * inv[f]), math.sin(p * inv[f])
    assert out[a] == pytest.approx(x[a] * c - x[b] * s, abs=1e-6)
    assert out[b] == pytest.approx(x[b] * c + x[a] * s, abs=1e-6)


def test_rope_scores_depend_only_on_relative_position():
  inv = pe.rope_inv_frequencies(16)
  q = jax.random.normal(jax.random.key(0), (1, 1, 1, 16))
  k = jax.random.normal(jax.random.key(1), (1, 1, 1, 16))
  def score(pq, pk):
    rq = pe.apply_rope(q, jnp.asarray([[pq]]), inv)
    rk = pe.apply_rope(k, jnp.asarray([[pk]]), inv)
    return float(jnp.sum(rq * rk))
  assert score(10, 3) == pytest.approx(score(107, 100), abs=1e-4)
  assert score(10, 3) != pytest.approx(score(10, 4), abs=1e-3)


def test_nope_has_no_hooks():
  enc = pe.get("nope")
  assert enc.embedding(8) is None and enc.rotary(8) is None
  assert enc.bias(4, causal=True) is None

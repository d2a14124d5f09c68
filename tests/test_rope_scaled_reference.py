"""Golden values of rope_yarn and dynamic rope_ntk from the reference implementations.

Provenance. The constants below were computed once by a throwaway numpy transcription (float32
where torch computes in float32) of:

* YaRN: jquesnelle/yarn at commit 995db5b575e75230b3384d658f8b944c9662f775,
  ``scaled_rope/LlamaYaRNScaledRotaryEmbedding.py``: ``find_correction_dim``,
  ``find_correction_range``, ``linear_ramp_mask`` and ``LlamaYaRNScaledRotaryEmbedding.yarn``
  (beta_fast=32, beta_slow=1, extrapolation_factor=1, base 10000). HuggingFace transformers at
  commit ef46806472a64b0013ed413781e3afed82bfa047, ``src/transformers/modeling_rope_utils.py``,
  ``_compute_yarn_parameters``, computes the same numbers (always floor/ceil there; later
  versions add ``truncate``, whose default True keeps the floor/ceil).
* Dynamic NTK: the same transformers file and commit, ``_compute_dynamic_ntk_parameters``:
  ``base * ((factor * seq_len / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))``
  with ``seq_len`` raised to ``max_position_embeddings`` when shorter.

Neither torch nor the reference code is needed here: the values are literal.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen.positional.rope_scaled import dynamic_ntk_base, yarn_correction_dim

# yarn(dim, base=10000, scale, original_max_position_embeddings): all dim // 2 inv_freq values.
_YARN_D128_L2048_S8 = np.array([
    1.000000000e+00, 8.659643531e-01, 7.498942018e-01, 6.493816376e-01, 5.623413324e-01,
    4.869675338e-01, 4.216965139e-01, 3.651741147e-01, 3.162277639e-01, 2.738419771e-01,
    2.371373922e-01, 2.053525001e-01, 1.778279394e-01, 1.539926529e-01, 1.333521456e-01,
    1.154782027e-01, 1.000000015e-01, 8.356555551e-02, 6.974015385e-02, 5.811965838e-02,
    4.836135358e-02, 4.017481953e-02, 3.331402317e-02, 2.757064626e-02, 2.276840061e-02,
    1.875817403e-02, 1.541392878e-02, 1.262917835e-02, 1.031402033e-02, 8.392599411e-03,
    6.800959818e-03, 5.485214293e-03, 4.399999976e-03, 3.507155459e-03, 2.774608321e-03,
    2.175428672e-03, 1.687024022e-03, 1.290464075e-03, 9.699019138e-04, 7.120894734e-04,
    5.059645046e-04, 3.423024609e-04, 2.964217274e-04, 2.566906333e-04, 2.222849289e-04,
    1.924908283e-04, 1.666901808e-04, 1.443477377e-04, 1.250000059e-04, 1.082455419e-04,
    9.373677312e-05, 8.117270772e-05, 7.029266271e-05, 6.087093789e-05, 5.271206828e-05,
    4.564676419e-05, 3.952847328e-05, 3.423024464e-05, 2.964217310e-05, 2.566906551e-05,
    2.222849253e-05, 1.924908065e-05, 1.666901881e-05, 1.443477595e-05,
])

_YARN_D64_L4096_S4 = np.array([
    1.000000000e+00, 7.498942018e-01, 5.623413324e-01, 4.216965139e-01, 3.162277639e-01,
    2.371373922e-01, 1.778279394e-01, 1.333521456e-01, 1.000000015e-01, 7.498941571e-02,
    5.623412877e-02, 3.973678499e-02, 2.797399648e-02, 1.960943453e-02, 1.367907226e-02,
    9.488517419e-03, 6.538461894e-03, 4.470523447e-03, 3.027991625e-03, 2.027386799e-03,
    1.337886788e-03, 8.664635243e-04, 5.471628974e-04, 3.333803616e-04, 2.500000119e-04,
    1.874735462e-04, 1.405853254e-04, 1.054241366e-04, 7.905694656e-05, 5.928434621e-05,
    4.445698505e-05, 3.333803761e-05,
])

_YARN_D128_L2048_S16 = np.array([
    1.000000000e+00, 8.659643531e-01, 7.498942018e-01, 6.493816376e-01, 5.623413324e-01,
    4.869675338e-01, 4.216965139e-01, 3.651741147e-01, 3.162277639e-01, 2.738419771e-01,
    2.371373922e-01, 2.053525001e-01, 1.778279394e-01, 1.539926529e-01, 1.333521456e-01,
    1.154782027e-01, 1.000000015e-01, 8.334906399e-02, 6.936521083e-02, 5.763262138e-02,
    4.779900983e-02, 3.956611082e-02, 3.268147632e-02, 2.693159133e-02, 2.213594504e-02,
    1.814202964e-02, 1.482108608e-02, 1.206445880e-02, 9.780536406e-03, 7.892123424e-03,
    6.334227044e-03, 5.052170716e-03, 4.000000190e-03, 3.139120759e-03, 2.437155927e-03,
    1.866972307e-03, 1.405853312e-03, 1.034806133e-03, 7.379688905e-04, 5.021143588e-04,
    3.162278445e-04, 1.711512305e-04, 1.482108637e-04, 1.283453166e-04, 1.111424644e-04,
    9.624541417e-05, 8.334509039e-05, 7.217386883e-05, 6.250000297e-05, 5.412277096e-05,
    4.686838656e-05, 4.058635386e-05, 3.514633136e-05, 3.043546894e-05, 2.635603414e-05,
    2.282338210e-05, 1.976423664e-05, 1.711512232e-05, 1.482108655e-05, 1.283453275e-05,
    1.111424626e-05, 9.624540326e-06, 8.334509403e-06, 7.217387974e-06,
])

# (base, dim, factor, seq_len, max_position_embeddings) -> dynamic NTK base.
_DYNAMIC_NTK_BASES = [
    ((10000.0, 64, 1.0, 1024, 512), 20452.228712025368),
    ((10000.0, 64, 2.0, 1024, 512), 31082.236667168814),
    ((10000.0, 128, 2.0, 4096, 2048), 30527.7367488067),
    ((10000.0, 128, 4.0, 3000, 2048), 29074.584325523087),
    ((10000.0, 64, 2.0, 512, 512), 10000.0),
    ((10000.0, 64, 4.0, 100, 512), 10000.0),
    ((500000.0, 128, 8.0, 16384, 8192), 4659713.555022214),
    ((10000.0, 16, 1.0, 16, 8), 22081.790273476247),
    ((10000.0, 16, 3.0, 16, 8), 48760.54616817902),
]


@pytest.mark.parametrize("head_dim, train_length, scale, want", [
    (128, 2048, 8.0, _YARN_D128_L2048_S8),
    (64, 4096, 4.0, _YARN_D64_L4096_S4),
    (128, 2048, 16.0, _YARN_D128_L2048_S16),
])
def test_yarn_frequencies_equal_the_reference(head_dim, train_length, scale, want):
  got = pe.get("rope_yarn", scale=scale, train_length=train_length).inv_frequencies(head_dim)
  assert got.shape == (head_dim // 2,)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(
      pe.yarn_inv_frequencies(head_dim, base=10000.0, scale=scale, train_length=train_length),
      want, rtol=1e-6)


def test_yarn_correction_range_of_the_reference():
  # find_correction_range(32, 1, ...) of the reference: (16, 41) and (10, 23).
  assert math.floor(yarn_correction_dim(32, 128, 10000.0, 2048)) == 16
  assert math.ceil(yarn_correction_dim(1, 128, 10000.0, 2048)) == 41
  assert math.floor(yarn_correction_dim(32, 64, 10000.0, 4096)) == 10
  assert math.ceil(yarn_correction_dim(1, 64, 10000.0, 4096)) == 23


def test_yarn_equal_bounds_edge_case():
  # d=8, original length 6: both bounds clamp to 0, the reference moves high to 0.001, so pair
  # 0 is kept and the others are divided by the scale.
  got = pe.get("rope_yarn", scale=2.0, train_length=6).inv_frequencies(8)
  np.testing.assert_allclose(got, [1.0, 0.05000000074505806, 0.004999999888241291,
                                   0.0005000000237487257], rtol=1e-6)


def test_rotation_ramp_keeps_the_previous_values():
  index = pe.get("rope_yarn", scale=8.0, train_length=2048).inv_frequencies(128)
  rotations = pe.get("rope_yarn", scale=8.0, train_length=2048,
                     ramp="rotations").inv_frequencies(128)
  assert float(f"{rotations[31]:.5g}") == 0.0023444
  assert float(f"{index[31]:.5g}") == 0.0054852
  # The paper's ramp, computed here from its formula.
  theta = pe.rope_inv_frequencies(128).astype(np.float64)
  gamma = np.clip((2048 * theta / (2 * math.pi) - 1) / 31, 0, 1)
  np.testing.assert_allclose(rotations, (1 - gamma) * theta / 8 + gamma * theta, rtol=1e-6)


def test_yarn_rejects_unknown_ramp():
  with pytest.raises(ValueError, match="ramp"):
    pe.get("rope_yarn", scale=2.0, ramp="paper")
  with pytest.raises(ValueError, match="alpha"):
    pe.get("rope_yarn", scale=2.0, alpha=0.0)


@pytest.mark.parametrize("args, want", _DYNAMIC_NTK_BASES)
def test_dynamic_ntk_base_equals_huggingface(args, want):
  base, dim, factor, seq_len, train_length = args
  assert dynamic_ntk_base(base, dim, factor, seq_len, train_length) == pytest.approx(
      want, rel=1e-12)
  got32 = dynamic_ntk_base(base, dim, factor, jnp.float32(seq_len), train_length)
  assert float(got32) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("factor, length", [(1.0, 16), (3.0, 16), (3.0, 8), (3.0, 5)])
def test_dynamic_ntk_rotary_uses_the_huggingface_base(factor, length):
  want = {(1.0, 16): 22081.790273476247, (3.0, 16): 48760.54616817902}.get(
      (factor, length), 10000.0)
  module = pe.get("rope_ntk", dynamic=True, scale=factor, train_length=8).rotary(16)
  rot = module.apply({}, jnp.arange(length)[None])
  inv = pe.rope_inv_frequencies(16, base=want)
  np.testing.assert_allclose(np.asarray(rot.cos_BTF),
                             np.cos(np.arange(length)[:, None] * inv)[None], atol=1e-5)

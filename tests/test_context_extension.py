"""Context-extension methods: ABF base change, Giraffe truncation and eval scaling, E^2-LLM
scale/offset augmentation, AnchorAttention's anchor, fine-tuning and the pointer head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen import train
from conftest import tiny_config


def test_abf_base_change_golden():
  # Xiong et al. 2023 (ABF): base 10,000 -> 500,000 lowers every frequency but the first.
  inv = pe.get("rope", base=500000.0).inv_frequencies(8)
  np.testing.assert_allclose(inv, [500000.0 ** (-2 * i / 8) for i in range(4)], rtol=1e-6)


def test_giraffe_truncated_basis_golden():
  # theta >= b kept; a < theta < b clamped to rho; theta <= a zeroed (Pal et al. 2023).
  enc = pe.get("rope", truncate_below=0.05, zero_below=0.002, clamp_value=0.01)
  theta = pe.rope_inv_frequencies(16)   # 1, 0.316, 0.1, 0.0316, 0.01, 0.00316, 0.001, 0.000316
  want = np.where(theta >= 0.05, theta, np.where(theta > 0.002, 0.01, 0.0))
  np.testing.assert_allclose(enc.inv_frequencies(16), want, rtol=1e-6)
  assert (enc.inv_frequencies(16)[-2:] == 0).all()
  with pytest.raises(ValueError, match="zero_below <= truncate_below"):
    pe.get("rope", truncate_below=0.001, zero_below=0.01)


def test_giraffe_larger_scale_at_evaluation():
  module = pe.get("rope_pi", scale=2.0, eval_scale=8.0).rotary(8)
  pos = jnp.arange(6)[None]
  inv = pe.rope_inv_frequencies(8)
  train_rot = module.apply({}, pos, train=True, rngs={"dropout": jax.random.key(0)})
  eval_rot = module.apply({}, pos, train=False)
  np.testing.assert_allclose(np.asarray(train_rot.cos_BTF)[0],
                             np.cos(np.arange(6)[:, None] / 2.0 * inv), atol=1e-6)
  np.testing.assert_allclose(np.asarray(eval_rot.cos_BTF)[0],
                             np.cos(np.arange(6)[:, None] / 8.0 * inv), atol=1e-6)


def test_e2llm_samples_a_scale_per_training_example():
  module = pe.get("rope_pi", train_scales=[1, 4]).rotary(8)
  pos = jnp.broadcast_to(jnp.arange(6), (64, 6))
  rot = module.apply({}, pos, train=True, rngs={"dropout": jax.random.key(1)})
  inv = pe.rope_inv_frequencies(8)
  ang = np.arccos(np.clip(np.asarray(rot.cos_BTF)[:, 1, 0], -1, 1))  # position 1, dim 0
  scales = 1.0 / ang * inv[0]
  assert set(np.round(scales, 4)) == {1.0, 4.0}, "each example uses one of the scales"
  evaluated = module.apply({}, pos, train=False)
  np.testing.assert_allclose(np.asarray(evaluated.cos_BTF)[0],
                             np.cos(np.arange(6)[:, None] * inv), atol=1e-6)


def test_offset_and_anchor_positions():
  tokens = np.ones((3, 5), np.int32)
  rng = np.random.default_rng(0)
  off = pe.sample_positions("offset", tokens, rng, train=True, vocab=[], max_offset=50)
  assert (np.diff(off, axis=1) == 1).all() and off[:, 0].max() < 50
  assert len(set(off[:, 0])) > 1, "one offset per example"
  anchored = pe.sample_positions("anchor", tokens, rng, train=True, vocab=[], max_offset=50)
  assert (anchored[:, 0] == 0).all() and (np.diff(anchored[:, 1:], axis=1) == 1).all()
  np.testing.assert_array_equal(
      pe.sample_positions("anchor", tokens, rng, train=False, vocab=[], max_offset=50),
      np.broadcast_to(np.arange(5), (3, 5)))


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("model", [
    dict(positional="rope", positional_options={"base": 500000.0}),
    dict(positional="rope", positional_options={"truncate_below": 0.05, "zero_below": 0.002}),
    dict(positional="rope_pi", positional_options={"scale": 2.0, "eval_scale": 4.0}),
    dict(positional="rope_pi", positional_options={"train_scales": [1.0, 2.0]},
         positions="offset", positions_options={"max_offset": 32}),
    dict(positional="rope", positions="anchor", positions_options={"max_offset": 32}),
    dict(head="pointer"),
])
def test_each_method_trains_end_to_end(tmp_path, model):
  config = tiny_config(task="sort", model=dict(num_layers=1, width=32, num_heads=2, **model),
                       train=dict(steps=4, batch_size=8, max_length=6, checkpoint_every=4,
                                  log_every=1))
  results = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert all(np.isfinite(r["token_accuracy"]) for r in results["eval"])

"""The Transformer: causality through gradients, encoder sees both ways, hooks, dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lengthgen.config import ModelConfig
from lengthgen.model import Transformer

ENCODINGS = ["nope", "sinusoidal", "learned", "rope", "alibi"]


@pytest.mark.parametrize("positional", ENCODINGS)
def test_decoder_is_causal(positional):
  """d(logits at q) / d(input at j) is nonzero exactly for j <= q."""
  config = ModelConfig(num_layers=2, width=32, num_heads=4, positional=positional)
  model = Transformer(config, vocab_size=11)
  t = 7
  tokens = jnp.ones((1, t), jnp.int32)
  params = model.init(jax.random.key(0), tokens)["params"]
  for query in range(t):
    g = jax.grad(lambda d: _apply_with_input_delta(model, params, tokens, d)[0, query].sum())(
        jnp.zeros((1, t, 32)))
    seen = np.abs(np.asarray(g)).sum(axis=-1)[0] > 0
    assert seen[:query + 1].all(), (positional, query, seen)
    assert not seen[query + 1:].any(), (positional, query, seen)


def _apply_with_input_delta(model, params, tokens, delta_BTW):
  """Runs the model with ``delta`` added to the token embeddings (via a perturbed table)."""
  # Each position gets its own token id so a per-position delta maps onto table rows.
  b, t = tokens.shape
  ids = jnp.arange(1, t + 1)[None].repeat(b, axis=0)
  table = params["embed"]["embedding"]
  table = table.at[1:t + 1].add(delta_BTW[0])
  p = {**params, "embed": {"embedding": table}}
  return model.apply({"params": p}, ids)


@pytest.mark.parametrize("positional", ENCODINGS)
def test_encoder_sees_both_directions(positional):
  config = ModelConfig(kind="encoder", num_layers=2, width=32, num_heads=4, positional=positional)
  model = Transformer(config, vocab_size=16)
  tokens = jnp.arange(1, 8)[None]
  params = model.init(jax.random.key(0), tokens)["params"]
  g = jax.grad(lambda d: _apply_with_input_delta(model, params, tokens, d)[0, 0].sum())(
      jnp.zeros((1, 7, 32)))
  assert (np.abs(np.asarray(g)).sum(axis=-1)[0] > 0).all()


def test_encoder_padding_is_invisible():
  config = ModelConfig(kind="encoder", num_layers=2, width=32, num_heads=4)
  model = Transformer(config, vocab_size=16)
  tokens = jnp.asarray([[3, 4, 5, 0, 0], [3, 4, 5, 7, 9]])
  params = model.init(jax.random.key(0), tokens)["params"]
  out = model.apply({"params": params}, tokens, lengths=jnp.asarray([3, 3]))
  np.testing.assert_allclose(out[0, :3], out[1, :3], rtol=1e-5, atol=1e-5)


def test_positions_are_explicit():
  config = ModelConfig(num_layers=1, width=32, num_heads=4, positional="sinusoidal")
  model = Transformer(config, vocab_size=11)
  tokens = jnp.ones((1, 5), jnp.int32)
  params = model.init(jax.random.key(0), tokens)["params"]
  a = model.apply({"params": params}, tokens)
  b = model.apply({"params": params}, tokens, jnp.arange(5)[None])
  c = model.apply({"params": params}, tokens, jnp.arange(5)[None] * 3)
  np.testing.assert_allclose(a, b, rtol=1e-6)
  assert not np.allclose(a, c)


def test_learned_table_refuses_positions_beyond_it():
  config = ModelConfig(num_layers=1, width=32, num_heads=4, positional="learned",
                       positional_options={"max_length": 8})
  model = Transformer(config, vocab_size=11)
  params = model.init(jax.random.key(0), jnp.ones((1, 8), jnp.int32))["params"]
  with pytest.raises(ValueError, match="supports positions below 8"):
    model.apply({"params": params}, jnp.ones((1, 9), jnp.int32))


def test_bfloat16_compute_runs():
  config = ModelConfig(num_layers=1, width=32, num_heads=4, positional="rope", dtype="bfloat16")
  model = Transformer(config, vocab_size=11)
  tokens = jnp.ones((2, 9), jnp.int32)
  params = model.init(jax.random.key(0), tokens)["params"]
  out = model.apply({"params": params}, tokens)
  assert out.dtype == jnp.float32 and np.isfinite(np.asarray(out)).all()


def test_pointer_logits_pool_scores_by_token():
  from lengthgen.heads import pointer_logits
  scores = jnp.asarray([[[1.0, 2.0, 3.0]]])            # one query, three positions
  tokens = jnp.asarray([[4, 5, 4]])
  visible = jnp.asarray([[[True, True, False]]])       # the third position is hidden
  out = np.asarray(pointer_logits(scores, tokens, visible, vocab_size=6))[0, 0]
  np.testing.assert_allclose(out[4], 1.0, rtol=1e-6)   # only position 0 holds a visible 4
  np.testing.assert_allclose(out[5], 2.0, rtol=1e-6)
  assert np.isneginf(out[[0, 1, 2, 3]]).all()
  both = np.asarray(pointer_logits(scores, tokens, jnp.ones_like(visible), 6))[0, 0]
  np.testing.assert_allclose(both[4], np.logaddexp(1.0, 3.0), rtol=1e-6)


def test_pointer_head_is_causal_and_points_at_inputs():
  config = ModelConfig(num_layers=1, width=32, num_heads=4, head="pointer")
  model = Transformer(config, vocab_size=11)
  t = 6
  tokens = jnp.ones((1, t), jnp.int32)
  params = model.init(jax.random.key(0), tokens)["params"]
  assert set(params["head"]) == {"query", "key", "logits"}
  for query in range(t):
    g = jax.grad(lambda d: _apply_with_input_delta(model, params, tokens, d)[0, query].sum())(
        jnp.zeros((1, t, 32)))
    seen = np.abs(np.asarray(g)).sum(axis=-1)[0] > 0
    assert not seen[query + 1:].any()


def test_t5_shares_one_table_across_layers_by_default(tiny):
  from lengthgen import build, data
  for options, shared in (({}, True), ({"share_bias": False}, False)):
    config = tiny(model=dict(num_layers=2, width=32, num_heads=2, positional="t5",
                             positional_options=options))
    setup = build.setup(config)
    inputs = data.training_inputs(setup, 0)
    params = setup.model.init(jax.random.key(0), inputs["tokens"], inputs["positions"],
                              task_ids_B=inputs["task_ids"])["params"]
    assert ("position_bias" in params) == shared
    assert ("position_bias" in params["block_1"]) == (not shared)

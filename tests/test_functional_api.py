"""The pure rotary API (``Encoding.rotation`` / ``rotate_qk`` / ``capped_query``) equals the
model's own rotary path, value for value, for every rotary encoding of the registry."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen.attention import layer as layer_lib
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer

D = 16
# (registry name, options): every rotary encoding, and the variants the options make of them.
VARIANTS = [
    ("rope", {}),
    ("rope", dict(layout="interleaved", fraction=0.5)),      # GPT-J layout, partial rotary
    ("rope", dict(base=500000.0)),                           # ABF (a larger base)
    ("rope", dict(truncate_below=0.05, zero_below=0.002)),   # Giraffe's truncated basis
    ("rope_pi", dict(scale=2.0, eval_scale=4.0)),            # PI; Giraffe's evaluation scale
    ("rope_pi", dict(train_scales=(1.0, 2.0, 4.0))),         # E^2-LLM's sampled scales
    ("rope_ntk", dict(scale=4.0)),
    ("rope_ntk", dict(dynamic=True, scale=2.0, train_length=6)),
    ("rope_yarn", dict(scale=4.0, train_length=6)),          # attention factor on q
    ("rope_yarn", dict(scale=8.0, train_length=6, ramp="rotations", layout="interleaved")),
    ("clex", dict(t_max=3, train_length=4)),                 # learned ODE weights as params
    ("clex", dict(t_max=3, train_length=4, training_positions="multiply",
                  log_scale_queries="clamped", layout="interleaved")),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in VARIANTS]


def _qk(seed=0, b=2, t=9, s=None, h=2):
  r = np.random.default_rng(seed)
  s = t if s is None else s
  return (jnp.asarray(r.normal(size=(b, t, h, D)), jnp.float32),
          jnp.asarray(r.normal(size=(b, s, h, D)), jnp.float32))


def _filled(shapes, seed=0):
  """Arrays of the given shapes (``jax.eval_shape`` of an init), standard normal * 0.3."""
  r = np.random.default_rng(seed)
  return jax.tree.map(lambda x: jnp.asarray(r.normal(size=x.shape) * 0.3, x.dtype), shapes)


def test_every_rotary_encoding_of_the_registry_is_covered():
  rotary = {name for name in pe.ENCODINGS if pe.get(name).rotary(D) is not None}
  assert rotary <= {name for name, _ in VARIANTS}
  for name in set(pe.ENCODINGS) - rotary:  # the others leave q and k alone
    q, k = _qk()
    got = pe.get(name).rotate_qk(q, k, jnp.broadcast_to(jnp.arange(9), (2, 9)))
    assert got[0] is q and got[1] is k


# The default run takes one case per registry name (partial interleaved RoPE, E^2-LLM's draw,
# dynamic NTK, YaRN's factor, CLEX's drawn t); the other cases are slow (CLEX's: ODE solves).
DEFAULT_RUN = {(IDS[1], False), (IDS[5], True), (IDS[7], False), (IDS[9], False),
               (IDS[11], True)}
AGAINST_MODULE = [
    pytest.param(n, o, train, id=f"{i}-{'train' if train else 'eval'}",
                 marks=() if (i, train) in DEFAULT_RUN else pytest.mark.slow)
    for (n, o), i in zip(VARIANTS, IDS) for train in (False, True)]


@pytest.mark.parametrize("name,options,train", AGAINST_MODULE)
def test_rotate_qk_equals_the_linen_module(name, options, train):
  enc = pe.get(name, **options)
  module = enc.rotary(D)
  positions = jnp.asarray([[0, 1, 2, 3, 5, 8, 9, 12, 13], [2, 3, 4, 5, 6, 7, 8, 9, 10]])
  key = jax.random.key(3)
  variables = _filled(jax.eval_shape(module.init, key, positions))  # CLEX's w_up, w_down
  q, k = _qk()

  def both_paths(variables, q, k):
    rotation = module.apply(variables, positions, train=train, rngs={"dropout": key})
    # The key the module's own draw uses (its first make_rng of the "dropout" stream).
    module_key = nn.apply(lambda m: m.make_rng("dropout"), module)(variables,
                                                                   rngs={"dropout": key})
    got = enc.rotate_qk(q, k, positions, train=train, rng=module_key,
                        params=variables.get("params"))
    return got, (rotation.apply(q, is_query=True), rotation.apply(k, is_query=False))

  (got_q, got_k), (want_q, want_k) = jax.jit(both_paths)(variables, q, k)
  np.testing.assert_array_equal(got_q, want_q)
  np.testing.assert_array_equal(got_k, want_k)
  assert not np.allclose(got_q, q)
  if name == "rope_yarn":  # q carries the attention factor squared, k none
    factor = pe.yarn_attention_factor(options["scale"]) ** 2
    plain_q, plain_k = pe.get("rope", **{o: v for o, v in options.items()
                                         if o == "layout"}).rotate_qk(q, k, positions)
    inv = enc.inv_frequencies(D)
    want_q = pe.apply_rope(q, positions, inv, layout=enc.layout) * factor
    np.testing.assert_allclose(got_q, want_q, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_k, pe.apply_rope(k, positions, inv, layout=enc.layout),
                               rtol=1e-6, atol=1e-6)  # (jit against eager: not bitwise)
    assert not np.allclose(got_q, plain_q) and not np.allclose(got_k, plain_k)


# In the default run: YaRN (attention factor, GPT-J layout); every other variant (dynamic
# NTK's length, CLEX's learned params, ...) in the slow tier: a model each.
IN_MODEL = [pytest.param(n, o, id=i, marks=() if i == IDS[9] else pytest.mark.slow)
            for (n, o), i in zip(VARIANTS, IDS)]


@pytest.mark.parametrize("name,options", IN_MODEL)
def test_rotate_qk_equals_the_models_rotary_path(name, options, monkeypatch):
  """Inside the Transformer: its raw q, k through ``rotate_qk`` are the q, k it attends with."""
  config = ModelConfig(num_layers=1, width=2 * D, num_heads=2, positional=name,
                       positional_options=options)
  model = Transformer(config, vocab_size=11)
  tokens = jax.random.randint(jax.random.key(0), (2, 9), 1, 11)
  positions = jnp.broadcast_to(jnp.arange(9) * 2, (2, 9))   # L = 17: past train_length
  params = _filled(jax.eval_shape(model.init, jax.random.key(1), tokens, positions))
  seen = {}

  def record_projection(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.name in ("query", "key"):
      seen[context.module.name] = out
    return out

  def record_attention(q, k, v, **kwargs):
    seen["q_rotated"], seen["k_rotated"] = q, k
    return real_attention(q, k, v, **kwargs)

  def both_paths(params):
    with nn.intercept_methods(record_projection):
      model.apply(params, tokens, positions)
    rotary_params = params["params"].get("rotary")  # CLEX's ODE weights, read from the model
    got = model.encoding.rotate_qk(seen["query"], seen["key"], positions,
                                   params=rotary_params)
    return got, (seen["q_rotated"], seen["k_rotated"])

  real_attention = layer_lib.dot_product_attention
  monkeypatch.setattr(layer_lib, "dot_product_attention", record_attention)
  (got_q, got_k), (want_q, want_k) = jax.jit(both_paths)(params)
  np.testing.assert_array_equal(got_q, want_q)
  np.testing.assert_array_equal(got_k, want_k)


def test_separate_query_and_key_positions_share_the_length():
  """Decoding the last query against all keys: the same as the full self-attention row."""
  enc = pe.get("rope_ntk", dynamic=True, train_length=4)
  q, k = _qk(t=12, b=1)
  positions = jnp.arange(12)[None]
  full_q, full_k = enc.rotate_qk(q, k, positions)
  last_q, keys = enc.rotate_qk(q[:, -1:], k, positions[:, -1:], positions)
  np.testing.assert_array_equal(last_q, full_q[:, -1:])
  np.testing.assert_array_equal(keys, full_k)
  # Alone, the last query would have seen its own L and another base; length= pins it.
  alone = enc.rotate_qk(q[:, -1:], k[:, -1:], positions[:, -1:])[0]
  np.testing.assert_array_equal(alone, full_q[:, -1:])
  short = enc.rotate_qk(q[:, -1:], k[:, -1:], positions[:, -1:], length=5)[0]
  assert not np.allclose(short, full_q[:, -1:])


@pytest.mark.parametrize("name,options", [("rope_yarn", dict(scale=4.0, train_length=6)),
                                          ("rope_ntk", dict(dynamic=True, train_length=4))])
def test_capped_query_sees_far_keys_from_the_window(name, options):
  """q_capped . k_j depends on window - j only, with the row's own frequencies."""
  enc = pe.get(name, **options)
  window = np.int64(4)   # numpy integers are accepted
  q, k = _qk(t=16, b=1)
  positions = jnp.arange(16)[None]
  capped = enc.capped_query(q, window, positions)
  _, k_rot = enc.rotate_qk(q, k, positions)
  shift = 7  # the same distance window - 0, moved by `shift` along the sequence
  q_far, k_far = enc.rotate_qk(q, k, jnp.full((1, 16), 4 + shift), jnp.full((1, 16), shift),
                               length=16)
  score = lambda a, b: np.einsum("bthd,bhd->bth", np.asarray(a, np.float64),
                                 np.asarray(b, np.float64)[:, 0])
  np.testing.assert_allclose(score(capped, k_rot), score(q_far, k_far), rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="window must be an integer >= 1"):
    enc.capped_query(q, 4.0, positions)


# E^2-LLM's draw and dynamic NTK's length in the default run; CLEX's (an ODE solve) is slow.
CAPPED = [pytest.param(n, o, train, id=f"{i}-{'train' if train else 'eval'}",
                       marks=() if (i, train) in {(IDS[0], False), (IDS[5], True),
                                                  (IDS[7], False)} else pytest.mark.slow)
          for (n, o), i in zip(VARIANTS, IDS) for train in (False, True)
          if i in (IDS[0], IDS[5], IDS[7], IDS[10], IDS[11])]


@pytest.mark.parametrize("name,options,train", CAPPED)
def test_the_modules_capped_rotation_is_capped_query(name, options, train):
  """``rotary(positions, capped_at=w)`` (the model's LM-Infinite path) rotates the capped q
  with the length and random draw of the positions, as ``capped_query`` does."""
  enc = pe.get(name, **options)
  module = enc.rotary(D)
  positions = jnp.asarray([[0, 1, 2, 3, 5, 8, 9, 12, 13], [2, 3, 4, 5, 6, 7, 8, 9, 10]])
  key, window = jax.random.key(5), 3
  variables = _filled(jax.eval_shape(module.init, key, positions))
  q, _ = _qk()

  def both_paths(variables, q):
    rotation, capped = module.apply(variables, positions, train=train, capped_at=window,
                                    rngs={"dropout": key})
    module_key = nn.apply(lambda m: m.make_rng("dropout"), module)(variables,
                                                                   rngs={"dropout": key})
    want = enc.capped_query(q, window, positions, train=train, rng=module_key,
                            params=variables.get("params"))
    alone = module.apply(variables, positions, train=train, rngs={"dropout": key})
    return (capped.apply(q, is_query=True), want, rotation.apply(q, is_query=True),
            alone.apply(q, is_query=True))

  got, want, rotated, alone = jax.jit(both_paths)(variables, q)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(rotated, alone)  # the rotation itself is unchanged by the cap
  if name == "rope_ntk":  # rotating the capped positions alone sees L = window + 1: wrong
    own = module.apply(variables, jnp.full_like(positions, window))
    assert not np.allclose(own.apply(q, is_query=True), got)


def test_rotation_arguments_are_checked():
  q, k = _qk()
  positions = jnp.broadcast_to(jnp.arange(9), (2, 9))
  enc = pe.get("rope")
  q_bhtd = jnp.swapaxes(q, 1, 2)  # [B, H, T, D] with H = 2 != T = 9
  with pytest.raises(ValueError, match=r"q_positions_BT must be \[B, T\].*is q_BTHD \[B, H, T, D\]"):
    enc.rotate_qk(q_bhtd, jnp.swapaxes(k, 1, 2), positions)
  with pytest.raises(ValueError, match="same head dim"):
    enc.rotate_qk(q, k[..., :8], positions)
  with pytest.raises(ValueError, match="has no rotary parameters"):
    enc.rotate_qk(q, k, positions, params={"w_up": jnp.zeros(3)})
  with pytest.raises(ValueError, match="pass rng"):
    pe.get("rope_pi", train_scales=(1, 2)).rotate_qk(q, k, positions, train=True)
  with pytest.raises(ValueError, match=r"positions_BT must be \[B, T\]"):
    pe.apply_rope(q, positions[:, :5], pe.rope_inv_frequencies(D))


@pytest.mark.slow
def test_clex_in_plain_jax_starts_as_ntk_scaling():
  """init_params and explicit params: CLEX at its NTK start, with its query factor."""
  enc = pe.get("clex", t_max=3, train_length=4)
  params = enc.init_params(D, jax.random.key(0))
  assert params["w_up"].shape == (8, 16) and not params["w_down"].any()
  q, k = _qk(t=10)
  positions = jnp.broadcast_to(jnp.arange(10), (2, 10))  # L = 10: t = ceil(10 / 4) = 3
  got_q, got_k = enc.rotate_qk(q, k, positions, params=params)
  ntk = pe.rope_inv_frequencies(D, base=pe.ntk_scaled_base(10000.0, D, 2 * 3 - 1))
  factor = np.log(10) / np.log(4)  # log_scale_queries="eval": ln L / ln train_length
  np.testing.assert_allclose(got_k, pe.apply_rope(k, positions, ntk), atol=2e-4)
  np.testing.assert_allclose(got_q, pe.apply_rope(q, positions, ntk) * factor, atol=5e-4)


def test_clex_params_are_checked():
  enc = pe.get("clex", t_max=3, train_length=4)
  params = enc.init_params(D, jax.random.key(0))
  q, k = _qk(t=10)
  positions = jnp.broadcast_to(jnp.arange(10), (2, 10))
  with pytest.raises(ValueError, match="params must be the ODE weights"):
    enc.rotate_qk(q, k, positions)
  with pytest.raises(ValueError, match=r"params\['w_up'\] must have shape \(8, 16\)"):
    enc.rotate_qk(q, k, positions, params={**params, "w_up": params["w_up"][:4]})
  with pytest.raises(ValueError, match="pass rng"):
    pe.get("clex", training_positions="multiply").rotate_qk(q, k, positions, train=True,
                                                            params=params)

"""Defaults that follow the authors' code where it and the paper differ: CLEX's training
positions and query log-scaling, and Deletang et al.'s odds_first.

The constants below were computed by hand (numpy, no torch) from these reference codes:

* DAMO-NLP-SG/CLEX at commit 023709d923ea9492ba82a6e8341d8c02f77e34e8 (2024-03-12; its
  ``CLEX/clex_layer.py`` last changed in 2e6996644de9dd88b88acd6bc154824f3e8556a3):
  - ``CLEX/clex_layer.py``, ``CLEXScalingRotaryEmbedding.forward``: in training
    ``t_val = randint(1, max_t + 1)`` and the positions are ``0``, then
    ``randperm(seq_len * t_val - 2)[:seq_len - 2].sort() + 1``, then ``seq_len * t_val - 1``
    (``get_random_position_ids``, scale_factor 1 at the training length); at evaluation
    ``t_val = ceil(seq_len / max_position_embeddings)`` capped at ``max_t``. Their RNG cannot
    be matched, so the sampler is tested on the properties of that construction.
  - ``CLEX/llama/modeling_llama_clex.py``, ``LlamaFlashAttention2.forward``: with
    ``config.log_scale`` the query states (after RoPE) are multiplied by
    ``log(kv_seq_len) / log(max_position_embeddings)``, unclamped (a clamped ``naive_len`` is
    commented out there). ``train/argument.py`` defaults ``log_scale`` to False and
    ``scripts/train_lm.sh`` passes ``--log_scale False``; ``scripts/eval.sh`` passes
    ``--log_scale True``: off in training, on at evaluation.
* google-deepmind/neural_networks_chomsky_hierarchy at commit
  2b8eb4bee872acf5b637fcc672f01c06939dc4ef (2024-04-12), ``tasks/cs/odds_first.py``,
  ``OddsFirst.sample_batch``: ``output = concatenate([s[:, 1::2], s[:, ::2]])`` (0-indexed odd
  positions first), while its docstring and the paper put s_1 s_3 ... first
  (``00110101 -> 0100 0111``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lengthgen.positional as pe
import lengthgen.tasks as tasks
from lengthgen import build, data
from lengthgen.positional import clex
from lengthgen.positional.clex import clex_query_scale, clex_scale_factor
from conftest import tiny_config


# --- CLEX training positions --------------------------------------------------------------

def _clex_positions(n, t_max, seed, b=3, train=True):
  return pe.sample_positions("clex", np.ones((b, n), np.int32), np.random.default_rng(seed),
                             train=train, vocab=[], t_max=t_max)


@pytest.mark.parametrize("n,t_max", [(2, 4), (5, 3), (16, 4), (64, 8)])
def test_clex_positions_are_the_authors_construction(n, t_max):
  scales = set()
  for seed in range(40):
    pos = _clex_positions(n, t_max, seed)
    assert pos.shape == (3, n) and pos.dtype == np.int32
    assert (pos == pos[0]).all(), "one subset per batch"
    row = pos[0]
    t = (int(row[-1]) + 1) // n
    assert 1 <= t <= t_max and row[-1] == n * t - 1 and row[0] == 0
    assert (np.diff(row) > 0).all(), "sorted and unique"
    assert row.min() >= 0 and row.max() < n * t
    if t == 1:
      np.testing.assert_array_equal(row, np.arange(n))
    scales.add(t)
  assert scales == set(range(1, t_max + 1))


def test_clex_positions_cover_the_range_uniformly():
  # Interior positions of t = 4 batches of 8 tokens: 6 of the 30 values in [1, 31) each time.
  counts = np.zeros(32)
  draws = 0
  for seed in range(3000):
    row = _clex_positions(8, 4, seed, b=1)[0]
    if row[-1] == 31:
      counts[row[1:-1]] += 1
      draws += 1
  assert counts[0] == counts[31] == 0
  expected = draws * 6 / 30
  assert np.abs(counts[1:31] - expected).max() < 5 * math.sqrt(expected)


def test_clex_positions_are_a_function_of_the_generator():
  np.testing.assert_array_equal(_clex_positions(20, 4, 7), _clex_positions(20, 4, 7))
  assert any(not np.array_equal(_clex_positions(20, 4, 7), _clex_positions(20, 4, s))
             for s in range(8, 12))
  np.testing.assert_array_equal(_clex_positions(20, 4, 7, train=False),
                                np.broadcast_to(np.arange(20), (3, 20)))
  np.testing.assert_array_equal(_clex_positions(1, 4, 7), np.zeros((3, 1)))
  with pytest.raises(ValueError, match="t_max"):
    _clex_positions(4, 0, 0)


def test_clex_training_batches_use_the_encodings_sampler_and_t_max():
  config = tiny_config(model=dict(positional="clex", positional_options={"t_max": 2}))
  setup = build.setup(build.validate(config))
  assert pe.get("clex").default_positions == "clex"
  spans = set()
  for step in range(12):
    a = data.training_inputs(setup, step)
    np.testing.assert_array_equal(a["positions"], data.training_inputs(setup, step)["positions"])
    n = a["tokens"].shape[1]
    spans.add((int(a["positions"].max()) + 1) / n)
  assert spans == {1.0, 2.0}
  multiply = tiny_config(model=dict(positional="clex",
                                    positional_options={"training_positions": "multiply"}))
  inputs = data.training_inputs(build.setup(build.validate(multiply)), 0)
  n = inputs["tokens"].shape[1]
  np.testing.assert_array_equal(inputs["positions"], np.broadcast_to(np.arange(n), (8, n)))


def test_clex_rotary_reads_the_sampled_scale_back(monkeypatch):
  d, n, t_max = 8, 6, 3   # the shapes of the test below (eager ops compile once)
  # z(t) = log(inv_freq / t) for t = 1..3: each t has its own frequencies, without an ODE solve.
  table = np.log(pe.rope_inv_frequencies(d))[None] - np.log(np.arange(1, t_max + 1))[:, None]
  monkeypatch.setattr(clex, "solve_log_frequencies", lambda *a, **k: jnp.asarray(table))
  module = pe.get("clex", t_max=t_max, train_length=n).rotary(d)
  w = {"w_up": jnp.zeros((d // 2, d)), "w_down": jnp.zeros((d, d // 2))}
  for t in range(1, t_max + 1):
    seed = next(s for s in range(100) if _clex_positions(n, t_max, s)[0, -1] == t * n - 1)
    pos = _clex_positions(n, t_max, seed, b=2)
    rot = module.apply({"params": w}, jnp.asarray(pos), train=True)
    want = np.cos(pos[..., None] * pe.rope_inv_frequencies(d) / t)
    np.testing.assert_allclose(np.asarray(rot.cos_BTF), want, atol=1e-5)
    assert rot.q_scale == 1.0  # no log-scaling in training by default
  # "multiply": positions 0..n-1 times a t from the dropout stream (one table for every t).
  same = np.repeat(np.log(pe.rope_inv_frequencies(d))[None], t_max, axis=0)
  monkeypatch.setattr(clex, "solve_log_frequencies", lambda *a, **k: jnp.asarray(same))
  multiply = pe.get("clex", t_max=t_max, train_length=n, training_positions="multiply").rotary(d)
  drawn = set()
  for key in range(12):
    cos = np.asarray(multiply.apply({"params": w}, jnp.arange(n)[None], train=True,
                                    rngs={"dropout": jax.random.key(key)}).cos_BTF)
    drawn |= {t for t in range(1, t_max + 1)
              if np.allclose(cos, np.cos(np.arange(n)[None, :, None] * t
                                         * pe.rope_inv_frequencies(d)), atol=1e-5)}
  assert drawn == {1, 2, 3}


# --- CLEX scale factor and query log-scaling ------------------------------------------------

# (seq_len, max_position_embeddings, max_t) -> t_val of clex_layer.py's evaluation branch.
EVAL_SCALE = [((10, 64, 4), 1), ((64, 64, 4), 1), ((65, 64, 4), 2), ((128, 64, 4), 2),
              ((129, 64, 4), 3), ((256, 64, 4), 4), ((1000, 64, 4), 4), ((300, 100, 16), 3)]


@pytest.mark.parametrize("args,want", EVAL_SCALE)
def test_clex_evaluation_scale_equals_the_reference(args, want):
  seq_len, train_length, t_max = args
  assert int(clex_scale_factor(jnp.float32(seq_len), divisor=train_length, t_max=t_max)) == want


# (kv_seq_len, max_position_embeddings) -> log(kv_seq_len) / log(max_position_embeddings).
LOG_SCALE = [((256, 64), 1.3333333333333333), ((32, 64), 0.8333333333333334),
             ((100, 64), 1.1073093649624542), ((64, 64), 1.0),
             ((65536, 4096), 1.3333333333333333), ((2, 4096), 0.08333333333333333)]


@pytest.mark.parametrize("args,want", LOG_SCALE)
def test_clex_query_log_scale_equals_the_reference(args, want):
  length, train_length = args
  got = clex_query_scale(jnp.float32(length), train_length=train_length, mode="eval",
                         train=False)
  assert float(got) == pytest.approx(want, rel=1e-6)
  assert clex_query_scale(jnp.float32(length), train_length=train_length, mode="eval",
                          train=True) == 1.0
  clamped = clex_query_scale(jnp.float32(length), train_length=train_length, mode="clamped",
                             train=True)
  assert float(clamped) == pytest.approx(max(1.0, want), rel=1e-6)
  assert clex_query_scale(jnp.float32(length), train_length=train_length, mode="none",
                          train=False) == 1.0


def test_clex_model_scales_queries_at_evaluation_by_default():
  d, n = 8, 6
  w = {"params": {"w_up": jnp.zeros((d // 2, d)), "w_down": jnp.zeros((d, d // 2))}}
  pos = jnp.broadcast_to(jnp.arange(n), (2, n))
  q = jax.random.normal(jax.random.key(1), (2, n, 1, d))
  rotations = {mode: pe.get("clex", t_max=1, train_length=8,   # t_max 1: no ODE to solve
                            log_scale_queries=mode).rotary(d).apply(w, pos)
               for mode in ("eval", "clamped", "none")}
  rot = rotations["eval"]   # L = 6 < train_length: a factor below 1
  unscaled = pe.rotate(q, rot.cos_BTF, rot.sin_BTF, layout="half")
  np.testing.assert_allclose(np.asarray(rot.apply(q, is_query=True)),
                             np.asarray(unscaled) * math.log(6) / math.log(8), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(rot.apply(q, is_query=False)), np.asarray(unscaled))
  assert float(rotations["clamped"].q_scale) == 1.0 and rotations["none"].q_scale == 1.0


@pytest.mark.parametrize("options,pattern", [
    ({"training_positions": "scaled"}, "training_positions"),
    ({"log_scale_queries": True}, "log_scale_queries"),
    ({"train_length": 1}, "train_length >= 2"),
])
def test_clex_bad_options(options, pattern):
  with pytest.raises(ValueError, match=pattern):
    pe.get("clex", **options)


# --- odds_first ------------------------------------------------------------------------------

# Input -> output of the reference code (s[1::2] then s[::2]) and of the paper's text.
ODDS_FIRST = [
    ("1 0 1 0 0", "0 0 1 1 0", "1 1 0 0 0"),
    ("0 0 1 1 0 1 0 1", "0 1 1 1 0 1 0 0", "0 1 0 0 0 1 1 1"),   # the docstring's example
    ("1 1 0", "1 1 0", "1 0 1"),                                 # the docstring's example
    ("1 0 0 0 0 1 1 1 0", "0 0 1 1 1 0 0 1 0", "1 0 0 1 0 0 0 1 1"),
    ("1", "1", "1"),
    ("0 1", "1 0", "0 1"),
]


@pytest.mark.parametrize("inputs,upstream,paper", ODDS_FIRST)
def test_odds_first_follows_the_reference_code_by_default(inputs, upstream, paper):
  assert tasks.get("odds_first").solve(inputs.split()) == upstream.split()
  assert tasks.get("odds_first", order="upstream").solve(inputs.split()) == upstream.split()
  assert tasks.get("odds_first", order="paper").solve(inputs.split()) == paper.split()


@pytest.mark.parametrize("order", ["upstream", "paper"])
def test_odds_first_targets_follow_the_order(order):
  task = tasks.get("odds_first", order=order)
  for length in (1, 2, 5, 8, 13):
    batch = task.sample(np.random.default_rng(length), 64, length)
    for row in zip(batch.tokens, batch.targets, batch.loss_mask):
      assert task.verify(*row)
    inputs = batch.tokens[:, :length]
    first = inputs[:, 1::2] if order == "upstream" else inputs[:, 0::2]
    np.testing.assert_array_equal(batch.targets[:, length:length + first.shape[1]], first)

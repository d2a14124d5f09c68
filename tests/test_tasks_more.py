"""The remaining decoder tasks (LEGO, SCAN, summation, polynomial, multi-digit sort,
addition scratchpad, multi-token copy), and a few training steps on every decoder task."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pytest

import lengthgen.tasks as tasks
from conftest import tiny_config
from lengthgen import build, data, train
from lengthgen.build import load_config
from lengthgen.config import ExperimentConfig
from lengthgen.model import Transformer
from lengthgen.tasks import scan

CASES = [("lego", {}), ("lego", {"order": "chain"}), ("lego", {"num_variables": 40}),
         ("scan", {}), ("summation", {}), ("summation", {"scratchpad": True}),
         ("polynomial", {}), ("sort_numbers", {}), ("sort_numbers", {"digits": 1}),
         ("addition", {"scratchpad": True}),
         ("addition", {"scratchpad": True, "reversed": True, "index_hints": True}),
         ("copy", {"variant": "multi_token"}), ("copy", {"variant": "multi_token",
                                                         "token_width": 1})]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


def _lengths(task):
  return (1, 2, 3, 7, 16) if task.name != "scan" else (1, 2, 7, 16, 24, 48)


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_verifier_agrees_and_notices_errors(name, options):
  task = tasks.get(name, **options)
  rng = np.random.default_rng(0)
  checked = 0
  for length in _lengths(task):
    batch = task.sample(rng, 400, length)
    assert all(task.verify(row) for row in batch.tokens)
    checked += 400
  assert checked >= 2000
  vocab_size = len(task.vocab)
  for row, mask in zip(batch.tokens[:50], batch.loss_mask[:50]):
    answer = mask.nonzero()[0][1:]  # answer token positions (the first masked one is the sep)
    broken = row.copy()
    pos = answer[-1]
    broken[pos] = 3 + (broken[pos] - 2) % (vocab_size - 3)  # another non-special token
    assert not task.verify(broken), task.render(broken)
    assert not task.verify(row[:answer[-1]]), "a truncated answer is wrong"


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_contract_and_determinism(name, options):
  task = tasks.get(name, **options)
  assert task.kind == "decoder" and task.vocab[0] == "<pad>"
  assert len(set(task.vocab)) == len(task.vocab), "token names are unique"
  length = 6
  a = task.sample(np.random.default_rng(7), 64, length)
  b = task.sample(np.random.default_rng(7), 64, length)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  assert a.tokens.dtype == np.int32 and a.targets.dtype == np.int32
  assert 0 <= a.tokens.min() and a.tokens.max() < len(task.vocab)
  eos = task.vocab.index("<eos>")
  for row, target, mask in zip(a.tokens, a.targets, a.loss_mask):
    n = int((row != 0).sum())
    assert (row[:n] != 0).all() and (row[n:] == 0).all(), "padding only at the right"
    np.testing.assert_array_equal(target[:n - 1], row[1:n])
    assert target[n - 1] == eos and (target[n:] == 0).all()
    cut = list(row).index(task.sep_id)
    assert not mask[:cut].any() and mask[cut:n].all() and not mask[n:].any()


@pytest.mark.parametrize("name,options,length,match", [
    ("lego", {"num_variables": 5}, 6, "at most 5"), ("lego", {}, 0, "at least 1"),
    ("summation", {}, 0, "at least 1"), ("polynomial", {}, -2, "at least 1"),
    ("sort_numbers", {}, 0, "at least 1"), ("copy", {"variant": "multi_token"}, 0, "at least"),
    ("scan", {}, 23, "one of .*22, 24"), ("scan", {}, 49, "one of"), ("scan", {}, 0, "one of"),
    ("addition", {"scratchpad": True, "max_digits": 4}, 5, "at most 4")])
def test_impossible_lengths_raise(name, options, length, match):
  with pytest.raises(ValueError, match=f"task '{name}': length must be.*{match}"):
    tasks.get(name, **options).sample(np.random.default_rng(0), 2, length)


@pytest.mark.parametrize("name,options,match", [
    ("lego", {"order": "reverse"}, "unknown order 'reverse'.*source, chain"),
    ("lego", {"num_variables": 0}, "num_variables"),
    ("sort_numbers", {"digits": 0}, "digits"),
    ("copy", {"variant": "multi_token", "token_width": 0}, "token_width")])
def test_bad_options_raise(name, options, match):
  with pytest.raises(ValueError, match=match):
    tasks.get(name, **options)


# SCAN: golden translations worked out by hand from the interpretation rules of Lake & Baroni
# (2018), Figure 6 / Table: [u left] = LTURN u, [x opposite d] = d d x, [x around d] = (d x)x4,
# [x1 and x2] = x1 x2, [x1 after x2] = x2 x1.
SCAN_GOLDEN = [
    ("jump twice after walk left", "LTURN WALK JUMP JUMP"),
    ("turn opposite right", "RTURN RTURN"),
    ("look around left", "LTURN LOOK LTURN LOOK LTURN LOOK LTURN LOOK"),
    ("walk", "WALK"),
    ("turn left", "LTURN"),
    ("run opposite left thrice", "LTURN LTURN RUN LTURN LTURN RUN LTURN LTURN RUN"),
    ("turn around right", "RTURN RTURN RTURN RTURN"),
    ("jump right and look twice", "RTURN JUMP LOOK LOOK"),
    ("walk left after turn right twice", "RTURN RTURN LTURN WALK"),
]


@pytest.mark.parametrize("command,actions", SCAN_GOLDEN)
def test_scan_interpreter_golden(command, actions):
  assert scan.interpret(command.split()) == actions.split()
  task = tasks.get("scan")
  source = [task.vocab.index(w) for w in command.split()]
  assert task.solve(source) == [task.vocab.index(a) for a in actions.split()]


def test_scan_enumeration_is_the_grammar():
  commands = scan._enumerate()
  assert len(commands) == 20910  # the size of SCAN reported by Lake & Baroni
  assert len({c for c, _ in commands}) == 20910
  assert max(len(a) for _, a in commands) == 48 and max(len(c) for c, _ in commands) == 9
  lengths = tasks.get("scan").valid_lengths()
  assert 22 in lengths and 23 not in lengths and 24 in lengths and lengths[-1] == 48
  batch = tasks.get("scan").sample(np.random.default_rng(0), 500, 24)
  assert (batch.loss_mask.sum(axis=1) == 25).all(), "24 actions and <eos> supervised"
  assert len({tuple(r) for r in batch.tokens}) > 50, "draws spread over the commands"


def test_scan_missing_next_takes_the_next_reachable_length():
  task = tasks.get("scan", missing="next")
  batch = task.sample(np.random.default_rng(0), 20, 23)
  assert (batch.loss_mask.sum(axis=1) == 25).all() and all(task.verify(r) for r in batch.tokens)
  np.testing.assert_array_equal(batch.tokens, tasks.get("scan").sample(
      np.random.default_rng(0), 20, 24).tokens)
  with pytest.raises(ValueError, match="task 'scan': length must be"):
    task.sample(np.random.default_rng(0), 2, 49)
  with pytest.raises(ValueError, match="unknown missing 'skip'.*error, next"):
    tasks.get("scan", missing="skip")


def test_lego_values_follow_the_chain():
  task = tasks.get("lego", order="chain")
  batch = task.sample(np.random.default_rng(1), 200, 8)
  source = batch.tokens[:, :40].reshape(200, 8, 5)
  assert (source[:, :, 1] == task.vocab.index("=")).all()
  assert (source[:, :, 4] == task.vocab.index(";")).all()
  assert ((source[:, :, 3] == task.vocab.index("1")).sum(axis=1) == 1).all()
  assert all(len(set(r)) == 8 for r in source[:, :, 0]), "distinct variables"


def test_summation_and_polynomial_by_hand():
  s = tasks.get("summation", scratchpad=True)
  row = [s.vocab.index(c) for c in "3 3 1 8 | 3 6 7 5".split()]
  assert s.verify(np.asarray(row))
  p = tasks.get("polynomial")
  row = [p.vocab.index(w) for w in "x = -1 : +2 x^3 -1 x^0 +3 x^1 | 4".split()]
  assert p.verify(np.asarray(row))  # 2*(-1)^3 - 1 - 3 = -6 = 4 (mod 10)
  row[-1] = p.vocab.index("6")
  assert not p.verify(np.asarray(row))


def test_addition_scratchpad_by_hand():
  t = tasks.get("addition", scratchpad=True)
  text = "3 5 7 + 4 6 8 = 7 8 5 c1 5 6 2 c1 3 4 8 c0 ; 0 8 2 5"
  assert t.verify(np.asarray([t.vocab.index(w) for w in text.split()]))
  wrong = text.replace("c1 3 4 8", "c0 3 4 8")
  assert not t.verify(np.asarray([t.vocab.index(w) for w in wrong.split()]))


def test_sort_numbers_and_multi_token_layout():
  t = tasks.get("sort_numbers", digits=4)
  batch = t.sample(np.random.default_rng(0), 100, 5)
  assert batch.tokens.shape[1] == 2 * (5 * 5 - 1) + 1
  assert (batch.tokens[:, 4:24:5] == t.vocab.index(",")).all()
  c = tasks.get("copy", variant="multi_token", token_width=2, alphabet_size=4)
  batch = c.sample(np.random.default_rng(0), 100, 3)
  assert c.vocab[-1] == "," and batch.tokens.shape[1] == 2 * 8 + 1
  assert (batch.tokens[:, 2:8:3] == c.vocab.index(",")).all()


DECODER_TASKS = sorted(n for n, cls in tasks.TASKS.items() if tasks.get(n).kind == "decoder")
_TINY = dict(task="copy", model=dict(num_layers=1, width=32, num_heads=1),
             train=dict(steps=3, batch_size=4, min_length=1, max_length=4, warmup_steps=0,
                        learning_rate=1e-2))


def _config(name: str) -> ExperimentConfig:
  d = tiny_config(**_TINY).to_dict()
  d.update(task=name, task_options={})
  return load_config(d)


@functools.lru_cache(maxsize=1)
def _shared_step(vocab_size: int):
  """One jitted step for every task: one vocabulary size and one padded shape, one compile."""
  config = _config("copy")
  model = Transformer(config.model, vocab_size=vocab_size)
  setup = dataclasses.replace(build.setup(config), model=model)
  tx = build.make_optimizer(config.train)
  return model, tx, jax.jit(functools.partial(train.train_step, setup=setup, tx=tx))


@pytest.mark.parametrize("name", DECODER_TASKS)
def test_tiny_decoder_trains_a_few_steps(name):
  config = _config(name)
  setup = build.setup(config)  # the task builds through the training entry point
  assert len(setup.vocab) <= 1024
  model, tx, step = _shared_step(1024)
  width = 128
  inputs = data.training_inputs(setup, step=0)
  assert inputs["tokens"].shape[1] <= width, inputs["tokens"].shape
  pad = ((0, 0), (0, width - inputs["tokens"].shape[1]))
  inputs = {k: np.pad(v, pad) if v.ndim == 2 else v for k, v in inputs.items()}
  state = build.init_state(model, tx, inputs, seed=0)
  losses = []
  for _ in range(3):
    state, metrics = step(state, inputs, jax.random.key(0))
    losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all() and losses[-1] != losses[0], losses


def _numbers(t, row):
  """The two operands and the answer of a reversed addition row, as ints and digit counts."""
  text = t.render(row).split()
  cut, eq = text.index("+"), text.index("=")
  value = lambda ds: int("".join(reversed(ds)))
  return [(value(ds), len(ds)) for ds in (text[:cut], text[cut + 1:eq], text[eq + 1:])]


def test_addition_bucket_and_natural_operands():
  bucket = tasks.get("addition", reversed=True, operands="bucket")
  natural = tasks.get("addition", reversed=True, operands="natural")
  padded = tasks.get("addition", reversed=True)
  rng = np.random.default_rng(0)
  b = bucket.sample(rng, 400, 6)
  # Every layout at one length has the padded layout's width, so training compiles once.
  assert b.tokens.shape == padded.sample(rng, 400, 6).tokens.shape == (400, 3 * 6 + 3)
  sizes = set()
  for row in b.tokens:
    assert bucket.verify(row)
    (x, nx), (y, ny), (s, ns) = _numbers(bucket, row)
    assert x + y == s and max(nx, ny) == 6 and ns == len(str(s))  # the sum's own digits
    assert len(str(x)) == nx and len(str(y)) == ny                 # no leading zeros
    sizes.add(min(nx, ny))
  assert sizes == set(range(1, 7))  # the shorter operand takes every length 1..n
  for row in natural.sample(rng, 100, 5).tokens:
    (x, nx), (y, ny), (s, ns) = _numbers(natural, row)
    assert nx == ny == 5 == len(str(x)) == len(str(y)) and s == x + y and ns == len(str(s))
  # The padded answer keeps its n + 1 digits; the natural one is wrong if zero-padded.
  row = [natural.vocab.index(w) for w in "1 2 + 3 4 = 4 6".split()]
  assert natural.verify(np.asarray(row))
  assert not natural.verify(np.asarray(row + [natural.vocab.index("0")]))
  assert padded.verify(np.asarray(row + [padded.vocab.index("0")]))
  with pytest.raises(ValueError, match="unknown operands 'mixed'; valid values: padded, "
                                       "natural, bucket"):
    tasks.get("addition", operands="mixed")
  with pytest.raises(ValueError, match="scratchpad needs operands='padded'"):
    tasks.get("addition", operands="bucket", scratchpad=True)

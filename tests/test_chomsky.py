"""The encoder tasks of Deletang et al. 2023: verifiers, layout contract, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

import lengthgen.tasks as tasks
from lengthgen.tasks.chomsky import BLANK, CHOMSKY_TASKS

NAMES = sorted(CHOMSKY_TASKS)
# 1..5 cover every special case of the reference; 63 and 70 pass the int64 limit (62 bits).
LENGTHS = [1, 2, 3, 4, 5, 6, 9, 16, 40, 63, 70]


def _rows(batch):
  return zip(batch.tokens, batch.targets, batch.loss_mask)


def test_registry_has_the_fifteen_tasks():
  assert NAMES == sorted([
      "even_pairs", "modular_arithmetic", "parity_check", "cycle_navigation",
      "stack_manipulation", "reverse_string", "modular_arithmetic_brackets", "solve_equation",
      "duplicate_string", "missing_duplicate_string", "odds_first", "binary_addition",
      "binary_multiplication", "compute_sqrt", "bucket_sort"])
  for name in NAMES:
    assert tasks.TASKS[name] is CHOMSKY_TASKS[name]
    assert tasks.get(name).kind == "encoder"


@pytest.mark.parametrize("name", NAMES)
def test_verifier_agrees_with_generated_targets(name):
  task = tasks.get(name)
  checked = 0
  for length in LENGTHS:
    batch = task.sample(np.random.default_rng(length), 256 if length < 60 else 32, length)
    for row in _rows(batch):
      assert task.verify(*row), f"{name} length {length}: {task.describe(batch)}"
      checked += 1
  assert checked >= 2000


@pytest.mark.parametrize("name", NAMES)
def test_verifier_rejects_a_wrong_answer(name):
  task = tasks.get(name)
  batch = task.sample(np.random.default_rng(1), 64, 12)
  targets = batch.targets.copy()
  rows = np.arange(64)
  first = np.argmax(batch.loss_mask, axis=1)
  targets[rows, first] = np.where(targets[rows, first] == 2, 3, 2)   # another symbol
  for tokens, wrong, mask in zip(batch.tokens, targets, batch.loss_mask):
    assert not task.verify(tokens, wrong, mask)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [1, 2, 7, 20])
def test_layout_contract(name, length):
  task = tasks.get(name)
  batch = task.sample(np.random.default_rng(0), 50, length)
  vocab = task.vocab
  assert vocab[0] == "<pad>" and vocab[1] == BLANK and len(set(vocab)) == len(vocab)
  assert batch.tokens.dtype == np.int32 and batch.targets.dtype == np.int32
  assert (batch.tokens > 0).all(), "no padding inside a sample"
  assert batch.tokens.max() < len(vocab) and batch.targets.max() < len(vocab)
  slots = task.output_length(length)
  n = batch.tokens.shape[1] - slots
  assert n == length - (name == "modular_arithmetic" and length % 2 == 0)
  assert (batch.tokens[:, :n] > 1).all() and (batch.tokens[:, n:] == 1).all()
  assert not batch.loss_mask[:, :n].any() and batch.loss_mask[:, n].all()
  assert (batch.targets[:, :n] == 0).all() and (batch.targets[:, n:] > 1).all()
  if name not in ("stack_manipulation", "binary_addition", "binary_multiplication"):
    assert batch.loss_mask[:, n:].all()
  else:   # supervised up to the end marker, exactly one of which is supervised
    end = vocab.index("$")
    assert ((batch.targets == end) & batch.loss_mask).sum(1).tolist() == [1] * 50
    full = tasks.get(name, supervise_padding=True).sample(np.random.default_rng(0), 50, length)
    np.testing.assert_array_equal(full.targets, batch.targets)
    assert full.loss_mask[:, n:].all()


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_deterministic_per_seed(name):
  task = tasks.get(name)
  a = task.sample(np.random.default_rng(7), 32, 15)
  b = task.sample(np.random.default_rng(7), 32, 15)
  c = task.sample(np.random.default_rng(8), 32, 15)
  for field in ("tokens", "targets", "loss_mask"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.tokens, c.tokens)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [0, -3, 2.5])
def test_impossible_lengths_raise(name, length):
  with pytest.raises(ValueError, match=f"{name}.*length"):
    tasks.get(name).sample(np.random.default_rng(0), 2, length)


@pytest.mark.parametrize("name,options", [("cycle_navigation", {"cycle_length": 1}),
                                          ("modular_arithmetic", {"modulus": 0}),
                                          ("bucket_sort", {"vocab_size": 1}),
                                          ("odds_first", {"order": "odd"}),
                                          ("solve_equation", {"modulus": 11})])
def test_bad_options_raise(name, options):
  with pytest.raises(ValueError, match=name):
    tasks.get(name, **options)


# Examples from the reference's docstrings (worked by hand there), in our token spelling.
# odds_first's docstring disagrees with its code; tests/test_reference_fidelity.py has both.
EXAMPLES = [
    ("even_pairs", "0 0 1 1 1 0", "0"), ("even_pairs", "0 1 0 1 0 0 1", "1"),
    ("parity_check", "1 0 1 0 1 0 0", "1"), ("parity_check", "0 1 1 1 1", "0"),
    ("cycle_navigation", "+1 -1 0 -1 -1", "3"), ("cycle_navigation", "+1 +1 +1 -1", "2"),
    ("modular_arithmetic", "1 + 2 * 3", "2"), ("modular_arithmetic", "1 - 1 - 1", "4"),
    ("modular_arithmetic", "0 * 1 + 4 * 3 - 2", "0"),
    ("stack_manipulation", "0 1 1 0 PUSH1 POP POP", "1 1 0 $"),
    ("stack_manipulation", "1 1 0 POP POP POP", "$"),
    ("reverse_string", "0 1 1 0 1 0", "0 1 0 1 1 0"),
    ("modular_arithmetic_brackets", "( ( 3 - ( - 2 ) ) + 4 )", "4"),
    ("solve_equation", "( x - ( - 2 ) ) = 1", "4"),
    ("duplicate_string", "1 0 1", "1 0 1 1 0 1"),
    ("missing_duplicate_string", "0 1 1 0 0 ? 1 0", "1"),
    ("missing_duplicate_string", "1 0 1 1 ? 1 .", "0"),
    ("binary_addition", "0 0 1 + 0 1 1 0 1", "0 1 0 1 1 $"),
    ("binary_addition", "1 0 0 1 + 0 0 0 0 0 1", "1 0 0 1 0 1 $"),
    ("binary_multiplication", "0 0 1 * 0 1 1 0 1", "0 0 0 1 1 0 1 $"),
    ("binary_multiplication", "1 0 0 1 * 0 0 0 0 0 1", "0 0 0 0 0 1 0 0 1 $"),
    ("compute_sqrt", "1 0 0 1 0 1", "1 1 0"), ("compute_sqrt", "1 1 1", "1 0"),
    ("bucket_sort", "1 0 2 0 4 1 1 2", "0 0 1 1 1 2 2 4"),
]


@pytest.mark.parametrize("name,inputs,answer", EXAMPLES)
def test_verifier_on_the_reference_examples(name, inputs, answer):
  assert tasks.get(name).solve(inputs.split()) == answer.split()


def test_distributions_follow_the_reference():
  rng = np.random.default_rng(0)
  # modular_arithmetic: an even length is lowered by one.
  assert tasks.get("modular_arithmetic").sample(rng, 4, 10).tokens.shape[1] == 9 + 1
  # Classes are balanced for parity / cycle navigation.
  for name, classes in (("parity_check", 2), ("cycle_navigation", 5), ("solve_equation", 5)):
    task = tasks.get(name)
    batch = task.sample(rng, 5000, 17)
    answers = batch.targets[batch.loss_mask]
    counts = np.bincount(answers - 2, minlength=classes)[:classes]
    assert counts.min() > 0.8 * 5000 / classes, (name, counts)
  # Bracket expressions: the left operand length is uniform, so both operators appear at
  # every depth and the nesting is bounded by the length.
  task = tasks.get("modular_arithmetic_brackets")
  batch = task.sample(rng, 2000, 30)
  vocab = task.vocab
  depth = np.cumsum((batch.tokens == vocab.index("(")).astype(int)
                    - (batch.tokens == vocab.index(")")), axis=1)
  assert depth[:, 29].tolist() == [0] * 2000 and depth.max() <= 15 and depth.min() >= 0
  plus, minus = (batch.tokens == vocab.index("+")).sum(), (batch.tokens == vocab.index("-")).sum()
  assert plus > 0.5 * minus and minus > plus    # binary "-" ~ "+", plus the unary ones
  # binary operands: the operator position is uniform in 1 .. n-2.
  task = tasks.get("binary_addition")
  batch = task.sample(rng, 4000, 12)
  where = np.argmax(batch.tokens == task.vocab.index("+"), axis=1)
  assert set(where.tolist()) == set(range(1, 11))


def test_describe_and_render():
  task = tasks.get("reverse_string")
  batch = task.sample(np.random.default_rng(0), 1, 4)
  inputs, answer = task.describe(batch).split(" -> ")
  assert inputs.split()[::-1] == answer.split()
  assert task.render(batch.tokens[0]) == inputs + " _ _ _ _"

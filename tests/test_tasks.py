"""Decoder tasks: verifiers agree with generated targets; determinism; contract; bad lengths."""

from __future__ import annotations

import numpy as np
import pytest

import lengthgen.tasks as tasks

CASES = [("copy", {}), ("copy", {"variant": "repeat"}), ("copy", {"variant": "replace"}),
         ("copy", {"variant": "repeat_change"}), ("copy", {"variant": "repeat", "prompt": True}),
         ("copy", {"variant": "repeat_change", "prompt": True}),
         ("copy", {"variant": "twice"}), ("copy", {"variant": "unique"}), ("reverse", {}),
         ("reverse", {"variant": "twice"}), ("reverse", {"variant": "reverse_copy"}),
         ("sort", {}), ("parity", {}), ("parity", {"scratchpad": True}), ("addition", {}),
         ("addition", {"reversed": True}), ("addition", {"index_hints": True}),
         ("addition", {"reversed": True, "index_hints": True}), ("count", {}), ("mode", {}),
         ("recall", {}), ("recall", {"num_keys": 16, "num_values": 4})]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_verifier_agrees_on_thousands_of_samples(name, options):
  task = tasks.get(name, **options)
  rng = np.random.default_rng(0)
  checked = 0
  for length in (1, 2, 3, 7, 16):
    batch = task.sample(rng, 400, length)
    assert all(task.verify(row) for row in batch.tokens)
    checked += 400
  assert checked >= 2000
  broken = batch.tokens.copy()
  last = batch.loss_mask[0].nonzero()[0][-1]  # the position that predicts <eos>: last answer token
  broken[0, last] = 3 if broken[0, last] != 3 else 4
  assert not task.verify(broken[0]), "the verifier notices a wrong answer"


@pytest.mark.parametrize("name,options", CASES, ids=IDS)
def test_contract_and_determinism(name, options):
  task = tasks.get(name, **options)
  assert task.kind == "decoder" and task.vocab[0] == "<pad>"
  a = task.sample(np.random.default_rng(7), 5, 6)
  b = task.sample(np.random.default_rng(7), 5, 6)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  assert a.tokens.dtype == np.int32 and a.tokens.max() < len(task.vocab)
  np.testing.assert_array_equal(a.targets[:, :-1], a.tokens[:, 1:])
  assert (a.targets[:, -1] == task.vocab.index("<eos>")).all()
  sep = task.sep_id
  for row, mask in zip(a.tokens, a.loss_mask):
    cut = list(row).index(sep)
    assert not mask[:cut].any() and mask[cut:].all(), "loss exactly on the answer and <eos>"


@pytest.mark.parametrize("name,options,length", [
    ("copy", {}, 0), ("copy", {"variant": "unique", "alphabet_size": 8}, 9),
    ("addition", {"max_digits": 10}, 11), ("count", {"max_value": 20}, 22), ("parity", {}, -1)])
def test_impossible_lengths_raise(name, options, length):
  with pytest.raises(ValueError, match=f"task '{name}': length must be"):
    tasks.get(name, **options).sample(np.random.default_rng(0), 2, length)


def test_unknown_variant_lists_valid_ones():
  with pytest.raises(ValueError, match="unknown variant 'mirror'.*plain, repeat"):
    tasks.get("copy", variant="mirror")


def test_recall_keys_distinct_and_query_stored():
  task = tasks.get("recall", num_keys=24, num_values=5)
  batch = task.sample(np.random.default_rng(3), 300, 24)  # every key used
  pairs = batch.tokens[:, :48]
  keys, values = pairs[:, 0::2], pairs[:, 1::2]
  assert all(len(set(r)) == 24 for r in keys)
  assert ((values >= 28) & (values < 33)).all()
  assert (batch.tokens[:, 48] == 3).all() and np.isin(batch.tokens[:, 49], np.arange(4, 28)).all()
  with pytest.raises(ValueError, match="at most 24"):
    task.sample(np.random.default_rng(0), 1, 25)


def test_copy_repeat_change_and_prompt_layouts_by_hand():
  sym = lambda i: 3 + i  # a{i}
  task = tasks.get("copy", variant="repeat_change", alphabet_size=6, prompt=True)
  prompt = task.vocab.index("<copy>")
  assert task.vocab[-1] == "<copy>" and prompt == 3 + 6
  batch = task.sample(np.random.default_rng(3), 300, 4)
  for row, mask in zip(batch.tokens, batch.loss_mask):
    old, new = row[1], row[2]
    assert row[0] == prompt and old != new and list(row[3:7]) == [old] * 4
    assert row[7] == task.sep_id and list(row[8:]) == [new] * 4
    assert mask.sum() == 5  # 4 answer tokens and <eos>
  assert task.solve([prompt, sym(1), sym(5), sym(1), sym(1)]) == [sym(5), sym(5)]
  # Every other symbol is drawn as the new one.
  assert len({(r[1], r[2]) for r in batch.tokens}) > 20
  plain = tasks.get("copy", variant="repeat", alphabet_size=6)
  assert "<copy>" not in plain.vocab
  with pytest.raises(ValueError, match="prompt must be true or false"):
    tasks.get("copy", prompt="yes")

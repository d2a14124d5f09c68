"""The format options that give reverse, sort, summation, parity and SCAN Kazemnejad et al.'s
layout (an instruction token first, their separators between elements); defaults unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import lengthgen.tasks as tasks

KAZEMNEJAD = [("reverse", {"prompt": True, "alphabet_size": 100}),
              ("sort", {"prompt": True, "commas": True, "alphabet_size": 50}),
              ("sort", {"commas": True}), ("sort", {"prompt": True}),
              ("summation", {"prompt": True, "plus": True}), ("summation", {"plus": True}),
              ("summation", {"prompt": True, "plus": True, "scratchpad": True}),
              ("parity", {"prompt": True, "commas": True}),
              ("parity", {"prompt": True, "commas": True, "scratchpad": True})]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in KAZEMNEJAD]


def _ids(task, words):
  return np.asarray([[task.vocab.index(w) for w in words.split()]], np.int32)


def test_layouts_by_hand():
  r = tasks.get("reverse", prompt=True)
  assert r.vocab[-1] == "<reverse>"
  src = _ids(r, "<reverse> a3 a1 a4")
  assert r.render(np.concatenate([src, r.answer(src)], 1)[0]) == "<reverse> a3 a1 a4 a4 a1 a3"
  assert r.verify(_ids(r, "<reverse> a3 a1 a4 | a4 a1 a3")[0])
  s = tasks.get("sort", prompt=True, commas=True, alphabet_size=8)
  assert s.vocab[-2:] == [",", "<sort>"]
  src = _ids(s, "<sort> a3 , a1 , a4 , a1")
  assert s.render(s.answer(src)[0]) == "a1 , a1 , a3 , a4"
  assert s.verify(_ids(s, "<sort> a3 , a1 , a4 | a1 , a3 , a4")[0])
  assert not s.verify(_ids(s, "<sort> a3 , a1 , a4 | a1 a3 a4")[0])
  m = tasks.get("summation", prompt=True, plus=True)
  assert m.vocab[-2:] == ["+", "<sum>"]
  assert m.verify(_ids(m, "<sum> 3 + 3 + 1 + 8 | 5")[0])
  assert not m.verify(_ids(m, "<sum> 3 + 3 + 1 + 8 | 4")[0])
  p = tasks.get("parity", prompt=True, commas=True)
  assert p.vocab[-2:] == [",", "<parity>"]
  assert p.verify(_ids(p, "<parity> 1 , 0 , 1 , 1 | 1")[0])
  assert not p.verify(_ids(p, "<parity> 1 , 0 , 1 , 1 | 0")[0])


@pytest.mark.parametrize("name,options", KAZEMNEJAD, ids=IDS)
def test_samples_verify_and_have_the_layout(name, options):
  task = tasks.get(name, **options)
  rng = np.random.default_rng(0)
  for length in (1, 2, 5, 16):
    batch = task.sample(rng, 8, length)
    assert batch.tokens.max() < len(task.vocab)
    for row in batch.tokens:
      assert task.verify(row)
      words = task.render(row).split()
      source = words[:words.index("|")]
      if options.get("prompt"):
        assert source[0] == task.vocab[-1] and task.vocab[-1] not in words[1:]
        source = source[1:]
      if options.get("commas") or options.get("plus"):
        sep = "+" if name == "summation" else ","
        assert len(source) == 2 * length - 1 and set(source[1::2]) <= {sep}
        if name == "sort":   # the answer has the commas too
          answer = words[words.index("|") + 1:]
          assert len(answer) == 2 * length - 1 and set(answer[1::2]) <= {sep}
      else:
        assert len(source) == length
    wrong = batch.tokens.copy()
    last = batch.loss_mask[0].nonzero()[0][-1]   # the last answer token of row 0
    wrong[0, last] = 3 if wrong[0, last] != 3 else 4
    assert not task.verify(wrong[0])


def test_defaults_are_unchanged():
  assert tasks.get("reverse").vocab == ["<pad>", "|", "<eos>"] + [f"a{i}" for i in range(16)]
  assert tasks.get("sort").vocab == ["<pad>", "|", "<eos>"] + [f"a{i}" for i in range(64)]
  assert tasks.get("summation").vocab == ["<pad>", "|", "<eos>"] + [str(i) for i in range(10)]
  assert tasks.get("parity").vocab == ["<pad>", "|", "<eos>", "0", "1"]
  rng = np.random.default_rng(3)
  source = rng.integers(3, 3 + 64, size=(4, 6), dtype=np.int32)
  batch = tasks.get("sort").sample(np.random.default_rng(3), 4, 6)
  np.testing.assert_array_equal(batch.tokens[:, :6], source)
  np.testing.assert_array_equal(batch.tokens[:, 7:], np.sort(source, axis=1))
  digits = np.random.default_rng(5).integers(1, 10, size=(4, 6), dtype=np.int32)
  batch = tasks.get("summation").sample(np.random.default_rng(5), 4, 6)
  np.testing.assert_array_equal(batch.tokens[:, :6], digits + 3)
  np.testing.assert_array_equal(batch.tokens[:, 7], digits.sum(1) % 10 + 3)
  bits = np.random.default_rng(7).integers(0, 2, size=(4, 6), dtype=np.int32)
  batch = tasks.get("parity").sample(np.random.default_rng(7), 4, 6)
  np.testing.assert_array_equal(batch.tokens[:, :6], bits + 3)
  np.testing.assert_array_equal(batch.tokens[:, 7], bits.sum(1) % 2 + 3)


@pytest.mark.parametrize("name,option", [("reverse", "prompt"), ("sort", "prompt"),
                                         ("sort", "commas"), ("summation", "prompt"),
                                         ("summation", "plus"), ("parity", "prompt"),
                                         ("parity", "commas")])
def test_non_boolean_options_are_refused(name, option):
  with pytest.raises(ValueError, match=f"task '{name}': {option} must be true or false"):
    tasks.get(name, **{option: 1})


def test_scan_prompt_is_one_column_before_the_plain_layout():
  plain = tasks.get("scan", missing="next")
  prompted = tasks.get("scan", missing="next", prompt=True)
  assert prompted.vocab == plain.vocab + ["<solve>"]
  assert plain.vocab == tasks.get("scan").vocab and "<solve>" not in plain.vocab
  for length in (1, 7, 23, 48):
    a = plain.sample(np.random.default_rng(length), 16, length)
    b = prompted.sample(np.random.default_rng(length), 16, length)
    assert (b.tokens[:, 0] == len(prompted.vocab) - 1).all()
    np.testing.assert_array_equal(b.tokens[:, 1:], a.tokens)
    np.testing.assert_array_equal(b.targets[:, 1:], a.targets)
    np.testing.assert_array_equal(b.targets[:, 0], a.tokens[:, 0])   # the first command word
    assert not b.loss_mask[:, 0].any() and (b.loss_mask[:, 1:] == a.loss_mask).all()
    assert all(prompted.verify(row) for row in b.tokens)
  with pytest.raises(ValueError, match="task 'scan': prompt must be true or false"):
    tasks.get("scan", prompt="yes")

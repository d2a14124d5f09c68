"""The ``randomized`` position sampler (Ruoss et al. 2023): per-example subsets of the real
length, and the shared subset of the padded width with ``per_example=False``."""

from __future__ import annotations

import numpy as np
import pytest

import lengthgen.positional as pe
from lengthgen import tasks
from lengthgen.tasks import base


def old_randomized(tokens_BT, rng, max_position):
  """The sampler before per-example draws: one sorted subset of size T for the batch."""
  b, t = tokens_BT.shape
  chosen = np.sort(rng.choice(max_position, size=t, replace=False)).astype(np.int32)
  return np.broadcast_to(chosen, (b, t)).copy()


def right_padded(lengths, width):
  """Tokens [B, width]: ``lengths[b]`` real tokens (id 1) then padding."""
  return (np.arange(width)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)


def randomized(tokens_BT, seed=0, **options):
  return pe.sample_positions("randomized", tokens_BT, np.random.default_rng(seed), train=True,
                             vocab=[], **options)


def test_pad_id_is_the_pad_token_of_every_task():
  for name in sorted(tasks.TASKS):
    assert tasks.get(name).vocab[base.PAD_ID] == base.PAD, name


def test_per_example_subsets_sorted_distinct_in_range_of_real_length():
  lengths = [1, 7, 3, 40, 0, 12]
  tokens_BT = right_padded(lengths, 40)
  pos_BT = randomized(tokens_BT, max_position=100)
  assert pos_BT.shape == (6, 40) and pos_BT.dtype == np.int32
  assert pos_BT.min() >= 0 and pos_BT.max() < 100
  for row, n in zip(pos_BT, lengths):
    real = row[:n]
    assert (np.diff(real) > 0).all() and len(set(real.tolist())) == n
    # Padding repeats the last real position (0 in a row of padding only).
    np.testing.assert_array_equal(row[n:], real[-1] if n else 0)
  assert not (pos_BT[2, :3] == pos_BT[1, :3]).all()  # examples draw independently


def test_padding_between_real_tokens_repeats_the_last_real_position():
  tokens_BT = np.asarray([[0, 5, 0, 0, 6, 7, 0]], np.int32)
  pos = randomized(tokens_BT, max_position=50)[0]
  real = pos[[1, 4, 5]]
  assert (np.diff(real) > 0).all()
  np.testing.assert_array_equal(pos, real[[0, 0, 0, 0, 1, 2, 2]])


def test_real_task_batches_of_mixed_lengths():
  rng = np.random.default_rng(1)
  for name in ["copy", "reverse_string"]:  # a decoder and an (encoder) Chomsky task
    task = tasks.get(name)
    batch = tasks.pad_batch(tasks.concat_batches([task.sample(rng, 2, n) for n in (1, 4, 9)]),
                            48)
    pos_BT = pe.sample_positions("randomized", batch.tokens, rng, train=False,
                                 vocab=task.vocab, max_position=64)
    for row, n in zip(pos_BT, batch.lengths):
      assert (np.diff(row[:n]) > 0).all() and (row[n:] == row[n - 1]).all()
      assert row.max() < 64


def test_short_example_in_wide_batch_spreads_over_the_whole_range():
  m = 1000
  # 2000 examples of 4 tokens padded to 40: E[max of 4 of m] = m (4/5 - ...) ~ 0.8 m.
  pos_BT = randomized(right_padded([4] * 2000, 40), max_position=m)
  assert abs(pos_BT[:, 3].mean() / m - 4 / 5) < 0.02
  # The shared subset of the padded width: the 4th of 40 sorted draws, ~ m 4/41.
  rng = np.random.default_rng(0)
  last = [pe.sample_positions("randomized", right_padded([4], 40), rng, train=True, vocab=[],
                              max_position=m, per_example=False)[0, 3] for _ in range(500)]
  assert abs(np.mean(last) / m - 4 / 41) < 0.02


def test_deterministic_in_the_rng_state():
  tokens_BT = right_padded([3, 9, 5], 16)
  np.testing.assert_array_equal(randomized(tokens_BT, seed=3, max_position=64),
                                randomized(tokens_BT, seed=3, max_position=64))
  assert not (randomized(tokens_BT, seed=3, max_position=64)
              == randomized(tokens_BT, seed=4, max_position=64)).all()
  # train and evaluation draw alike: only the rng matters.
  rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
  np.testing.assert_array_equal(
      pe.sample_positions("randomized", tokens_BT, rng_a, train=True, vocab=[], max_position=64),
      pe.sample_positions("randomized", tokens_BT, rng_b, train=False, vocab=[],
                          max_position=64))


def test_too_long_and_missing_rng_raise():
  with pytest.raises(ValueError, match="sequence of 30 tokens exceeds max_position 20"):
    randomized(np.ones((1, 30), np.int32), max_position=20)
  # Per example the real length counts, not the padded width ...
  assert randomized(right_padded([20, 5], 30), max_position=20).max() < 20
  # ... which the shared subset has to cover.
  with pytest.raises(ValueError, match="sequence of 30 tokens exceeds max_position 20"):
    randomized(right_padded([20, 5], 30), max_position=20, per_example=False)
  with pytest.raises(ValueError, match="need a random generator"):
    pe.sample_positions("randomized", np.ones((1, 3), np.int32), None, train=True, vocab=[])


@pytest.mark.parametrize("shape,max_position,seed", [((3, 50), 200, 0), ((1, 7), 7, 1),
                                                      ((4, 33), 2048, 2)])
def test_shared_subset_reproduces_the_old_draw(shape, max_position, seed):
  tokens_BT = right_padded([shape[1] // 2] * shape[0], shape[1])  # padding does not matter
  rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
  for _ in range(2):  # and the rng advances as it did
    pos_BT = pe.sample_positions("randomized", tokens_BT, rng, train=True, vocab=[],
                                 max_position=max_position, per_example=False)
    np.testing.assert_array_equal(pos_BT, old_randomized(tokens_BT, old_rng, max_position))
    assert (pos_BT == pos_BT[0]).all() and (np.diff(pos_BT, axis=1) > 0).all()

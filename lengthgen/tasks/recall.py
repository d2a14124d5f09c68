"""Associative recall: find the value stored under a queried key.

    k3 v5 k1 v2 k7 v0 ? k1 | v2

Length is the number of key-value pairs (the source has 2 * length + 2 tokens). Keys are
distinct within an example and drawn from ``num_keys`` key tokens; values come from
``num_values`` value tokens; the query is one of the stored keys, uniformly. The answer is
one token, so exact match equals token accuracy: a recall test of attention that stays
sharp as the context grows (used for the softplus-attention comparison).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base


@dataclasses.dataclass(frozen=True)
class Recall:
  num_keys: int = 512
  num_values: int = 16
  name = "recall"
  kind = "decoder"
  sep_id = 1
  eos_id = 2
  query_id = 3

  def __post_init__(self):
    for field in ("num_keys", "num_values"):
      value = getattr(self, field)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"task 'recall': {field} must be a positive integer; got {value!r}")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD, base.SEP, base.EOS, "?"] + [f"k{i}" for i in range(self.num_keys)]
            + [f"v{i}" for i in range(self.num_values)])

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length, maximum=self.num_keys)
    # Distinct keys per row: the first `length` of a random permutation (argsort of noise).
    keys = np.argsort(rng.random((batch_size, self.num_keys)), axis=1)[:, :length]
    values = rng.integers(0, self.num_values, size=(batch_size, length))
    which = rng.integers(0, length, size=batch_size)
    rows = np.arange(batch_size)
    pairs = np.stack([keys + 4, values + 4 + self.num_keys], axis=-1).reshape(batch_size, -1)
    query = np.stack([np.full(batch_size, self.query_id), keys[rows, which] + 4], axis=1)
    source = np.concatenate([pairs, query], axis=1).astype(np.int32)
    answer = (values[rows, which] + 4 + self.num_keys)[:, None].astype(np.int32)
    return base.decoder_batch(source, answer, self.sep_id, self.eos_id)

  def solve(self, source):
    *pairs, query_token, key = source
    assert query_token == self.query_id
    table = dict(zip(pairs[0::2], pairs[1::2]))
    return [table[key]]

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

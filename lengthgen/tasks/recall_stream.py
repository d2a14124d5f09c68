"""A language-model-style recall stream: next-token prediction over key-value pairs.

    k3 v5 k1 v2 k3 v5 k7 v0 k1 v2 k7 -> v0

Length is the number of key-value pairs before the final key (2 * length + 1 tokens). Each
example binds a pool of ``ceil(length / repeats)`` distinct keys (from ``num_keys`` key
tokens) to random values (from ``num_values`` value tokens); every pair draws its key
uniformly from the pool and shows that key's value. The stream ends with one key that
already appeared. Every value whose key appeared earlier in the stream is predictable and
supervised (the final key's value always is); a value after a first occurrence is random
and carries no loss. So a model that recalls perfectly has zero loss at every length, and the
loss-versus-length curve of ``eval`` rows (``loss``) is the language-model check of the
softplus-attention paper (Gao & Spratling): trained on streams of T tokens, evaluated on 8T.
The pool grows with the length, so a longer stream holds more bindings and a value's earlier
occurrence lies further back.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base


@dataclasses.dataclass(frozen=True)
class RecallStream:
  num_keys: int = 256
  num_values: int = 16
  repeats: int = 2
  name = "recall_stream"
  kind = "decoder"
  first_key_id = 1   # ids: 0 padding, then the keys, then the values

  def __post_init__(self):
    for field in ("num_keys", "num_values", "repeats"):
      value = getattr(self, field)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"task 'recall_stream': {field} must be a positive integer; "
                         f"got {value!r}")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD] + [f"k{i}" for i in range(self.num_keys)]
            + [f"v{i}" for i in range(self.num_values)])

  def pool_size(self, length: int) -> int:
    """Distinct keys of an example of ``length`` pairs: ceil(length / repeats)."""
    return -(-length // self.repeats)

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length, maximum=self.num_keys * self.repeats)
    b, pool = batch_size, self.pool_size(length)
    rows = np.arange(b)[:, None]
    pool_keys = np.argsort(rng.random((b, self.num_keys)), axis=1)[:, :pool]    # distinct
    pool_values = rng.integers(0, self.num_values, size=(b, pool))
    which = rng.integers(0, pool, size=(b, length))                            # pool index
    seen = np.zeros((b, pool), bool)
    recurring = np.zeros((b, length), bool)
    for i in range(length):
      recurring[:, i] = seen[rows[:, 0], which[:, i]]
      seen[rows[:, 0], which[:, i]] = True
    # The final key: uniform among the pool entries the stream has shown.
    last = np.argmax(rng.random((b, pool)) * seen, axis=1)
    which = np.concatenate([which, last[:, None]], axis=1)
    recurring = np.concatenate([recurring, np.ones((b, 1), bool)], axis=1)
    keys = pool_keys[rows, which] + self.first_key_id                           # [B, n+1]
    values = pool_values[rows, which] + self.first_key_id + self.num_keys       # [B, n+1]
    tokens = np.stack([keys, values], axis=-1).reshape(b, -1)[:, :-1].astype(np.int32)
    targets = np.concatenate([tokens[:, 1:], values[:, -1:]], axis=1).astype(np.int32)
    loss_mask = np.zeros(tokens.shape, bool)
    loss_mask[:, 0::2] = recurring        # at each key: predict its value if it recurs
    return base.Batch(tokens, targets, loss_mask)

  def solve(self, tokens) -> list[int]:
    """The value of every supervised key position of one stream (padding dropped)."""
    tokens = [int(t) for t in tokens if int(t) != base.PAD_ID]
    table, out = {}, []
    for i in range(0, len(tokens), 2):
      key = tokens[i]
      if key in table:
        out.append(table[key])
      if i + 1 < len(tokens):
        table.setdefault(key, tokens[i + 1])
    return out

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

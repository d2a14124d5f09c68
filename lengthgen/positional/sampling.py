"""Position samplers: the explicit positions fed to the model for a batch of tokens.

Positions are data (numpy, generated with the batch from a ``np.random.Generator``), so
randomized positions, Abacus offsets and scaled positions need no special case in the model.

    positions_BT = sample_positions("contiguous", tokens_BT, rng, train=True, vocab=vocab)
"""

from __future__ import annotations

import numpy as np


def contiguous(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
               vocab: list[str]) -> np.ndarray:
  """0, 1, ..., T-1 for every example."""
  del rng, train, vocab
  b, t = tokens_BT.shape
  return np.broadcast_to(np.arange(t, dtype=np.int32), (b, t)).copy()


POSITION_SAMPLERS = {
    "contiguous": contiguous,
}


def sample_positions(name: str, tokens_BT: np.ndarray, rng: np.random.Generator | None, *,
                     train: bool, vocab: list[str], **options) -> np.ndarray:
  """Positions [B, T] int32 for ``tokens_BT`` from the sampler ``name``."""
  if name not in POSITION_SAMPLERS:
    raise ValueError(f"unknown position sampler {name!r}; valid samplers: "
                     f"{', '.join(POSITION_SAMPLERS)}")
  return POSITION_SAMPLERS[name](tokens_BT, rng, train=train, vocab=vocab, **options)

"""Position samplers: the explicit positions fed to the model for a batch of tokens.

Positions are data (numpy, generated with the batch from a ``np.random.Generator``), so
randomized positions, Abacus offsets and scaled positions need no special case in the model.

    positions_BT = sample_positions("contiguous", tokens_BT, rng, train=True, vocab=vocab)
"""

from __future__ import annotations

import numpy as np

from lengthgen.positional.abacus import abacus_sampler
from lengthgen.positional.base import Encoding


def contiguous(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
               vocab: list[str]) -> np.ndarray:
  """0, 1, ..., T-1 for every example."""
  del rng, train, vocab
  b, t = tokens_BT.shape
  return np.broadcast_to(np.arange(t, dtype=np.int32), (b, t)).copy()


def randomized(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
               vocab: list[str], max_position: int = 2048) -> np.ndarray:
  """Randomized positions (Ruoss et al. 2023): one sorted random subset of [0, max_position).

  The same subset is used for every example of the batch, at training and at test time, so
  the model sees the large positions of long sequences already while training short.
  """
  del train, vocab
  b, t = tokens_BT.shape
  if t > max_position:
    raise ValueError(f"randomized positions: sequence of {t} tokens exceeds max_position "
                     f"{max_position}; raise positions_options.max_position")
  if rng is None:
    raise ValueError("randomized positions need a random generator")
  chosen = np.sort(rng.choice(max_position, size=t, replace=False)).astype(np.int32)
  return np.broadcast_to(chosen, (b, t)).copy()


def offset(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
           vocab: list[str], max_offset: int = 0, anchor: bool = False) -> np.ndarray:
  """Contiguous positions shifted by a random per-example offset in [0, max_offset) during
  training (E^2-LLM's position augmentation); none at evaluation. With ``anchor`` the first
  token keeps position 0 in every example (AnchorAttention's shared anchor) and the others
  start at 1 + offset."""
  del vocab
  positions = contiguous(tokens_BT, None, train=train, vocab=[])
  if train and max_offset > 0:
    if rng is None:
      raise ValueError("position offsets need a random generator during training")
    positions = positions + rng.integers(0, max_offset, size=(positions.shape[0], 1))
  if anchor:
    positions[:, 0] = 0
  return positions.astype(np.int32)


def clex(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
         vocab: list[str], t_max: int = 4) -> np.ndarray:
  """CLEX's training positions (Chen et al. 2023, as in the authors' code): a scale t uniform
  in {1..t_max} per batch and a sorted random subset of T positions of [0, T t) that keeps
  0 and T t - 1 (T tokens), the same for every example; 0..T-1 at evaluation.

  The CLEX rotary reads t back as (max position + 1) / T. This is the default sampler of
  ``clex`` (``training_positions="sample"``), which passes its ``t_max``.
  """
  del vocab
  positions = contiguous(tokens_BT, None, train=train, vocab=[])
  b, n = positions.shape
  if not train or n < 2:
    return positions
  if rng is None:
    raise ValueError("clex positions need a random generator during training")
  if not isinstance(t_max, int) or t_max < 1:
    raise ValueError(f"clex positions: t_max must be an integer >= 1, got {t_max!r}")
  t = int(rng.integers(1, t_max + 1))
  inner = np.sort(rng.choice(n * t - 2, size=n - 2, replace=False)) + 1
  chosen = np.concatenate([[0], inner, [n * t - 1]]).astype(np.int32)
  return np.broadcast_to(chosen, (b, n)).copy()


def _anchor(tokens_BT, rng, *, train, vocab, max_offset: int = 0):
  return offset(tokens_BT, rng, train=train, vocab=vocab, max_offset=max_offset, anchor=True)


POSITION_SAMPLERS = {
    "contiguous": contiguous,
    "randomized": randomized,
    "offset": offset,
    "anchor": _anchor,
    "abacus": abacus_sampler,
    "clex": clex,
}


def resolve_sampler(encoding: Encoding, name: str, options) -> tuple[str, dict]:
  """The sampler a config's ``positions`` and ``positions_options`` mean for ``encoding``.

  ``"default"`` is the encoding's own sampler with the options the encoding gives it
  (``Encoding.default_positions_options``, e.g. CLEX's ``t_max``); ``options`` override them.
  """
  if name == "default":
    return encoding.default_positions, {**encoding.default_positions_options(), **options}
  return name, dict(options)


def sample_positions(name: str, tokens_BT: np.ndarray, rng: np.random.Generator | None, *,
                     train: bool, vocab: list[str], **options) -> np.ndarray:
  """Positions [B, T] int32 for ``tokens_BT`` from the sampler ``name``."""
  if name not in POSITION_SAMPLERS:
    raise ValueError(f"unknown position sampler {name!r}; valid samplers: "
                     f"{', '.join(POSITION_SAMPLERS)}")
  return POSITION_SAMPLERS[name](tokens_BT, rng, train=train, vocab=vocab, **options)

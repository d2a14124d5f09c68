"""Position samplers: the explicit positions fed to the model for a batch of tokens.

Positions are data (numpy, generated with the batch from a ``np.random.Generator``), so
randomized positions, Abacus offsets and scaled positions need no special case in the model.

    positions_BT = sample_positions("contiguous", tokens_BT, rng, train=True, vocab=vocab)
"""

from __future__ import annotations

import numpy as np

from lengthgen.positional.abacus import abacus_sampler
from lengthgen.positional.base import Encoding
from lengthgen.tasks.base import PAD_ID


def contiguous(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
               vocab: list[str]) -> np.ndarray:
  """0, 1, ..., T-1 for every example."""
  del rng, train, vocab
  b, t = tokens_BT.shape
  return np.broadcast_to(np.arange(t, dtype=np.int32), (b, t)).copy()


def randomized(tokens_BT: np.ndarray, rng: np.random.Generator | None, *, train: bool,
               vocab: list[str], max_position: int = 2048, per_example: bool = True
               ) -> np.ndarray:
  """Randomized positions (Ruoss et al. 2023): a sorted random subset of [0, max_position).

  With ``per_example`` (the default) each example b draws its own subset of size n_b, its
  number of real tokens (ids other than ``PAD_ID``), and its real tokens take the subset in
  order. This is the authors' distribution: their batches hold one length, and they draw
  exactly that many positions (``noisy_fixed_positional_encodings`` in
  models/positional_encodings.py of google-deepmind/randomized_positional_encodings),
  at training and at test time. They share the draw among the examples of a batch; here
  each example draws independently, from ``rng`` in batch order. A padding token repeats
  the position of the last real token before it (the subset's first for leading padding,
  0 in a row of padding only), so no position exceeds the row's largest real one: all stay
  below ``max_position`` and within any table the encoding checks. (The model masks padded
  keys through ``lengths``; their positions only have to be valid.)

  With ``per_example=False`` one subset of size T, the padded width, is shared by the whole
  batch and an example of n real tokens gets its first n: its last position is then about
  ``max_position * n / (T + 1)``, not ``max_position * n / (n + 1)``, so a short example in a
  wide batch never sees the large positions (an option to compare with runs that used it).

  Raises:
    ValueError: if an example (or, with ``per_example=False``, the padded width) has more
      tokens than ``max_position``, or ``rng`` is None.
  """
  del train, vocab
  b, t = tokens_BT.shape
  real_BT = tokens_BT != PAD_ID
  lengths_B = real_BT.sum(axis=1)
  n = t if not per_example else int(lengths_B.max(initial=0))
  if n > max_position:
    raise ValueError(f"randomized positions: sequence of {n} tokens exceeds max_position "
                     f"{max_position}; raise positions_options.max_position")
  if rng is None:
    raise ValueError("randomized positions need a random generator")
  if not per_example:
    chosen = np.sort(rng.choice(max_position, size=t, replace=False)).astype(np.int32)
    return np.broadcast_to(chosen, (b, t)).copy()
  # Index of each token's subset entry: its rank among the row's real tokens, which a
  # padding token shares with the last real token before it (0 before the first).
  rank_BT = np.maximum(np.cumsum(real_BT, axis=1) - 1, 0)
  positions_BT = np.zeros((b, t), np.int32)
  for row, n_b in enumerate(lengths_B):
    if n_b:
      chosen = np.sort(rng.choice(max_position, size=int(n_b), replace=False))
      positions_BT[row] = chosen[rank_BT[row]]
  return positions_BT


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

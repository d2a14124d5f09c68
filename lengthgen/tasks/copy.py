"""Copy: repeat the source after the separator (Kazemnejad et al. 2023).

    plain    a3 a1 a4 a1 | a3 a1 a4 a1
    repeat   a5 a5 a5 a5 | a5 a5 a5 a5          (one token repeated)
    repeat_change  a5 a2 a5 a5 a5 | a2 a2 a2    (Kazemnejad's "Repeat+Change": "replace a5
                                                with a2 in a5 a5 a5"; length = repeats)
    replace  a0 a1 a4 a0 | a1 a1 a4 a1          (every a0 replaced by a1)
    twice    a3 a1 a4 | a3 a1 a4 a3 a1 a4
    unique   a7 a2 a9 a0 | a7 a2 a9 a0          (distinct tokens; RASP-L's unique copy)
    multi_token  a3 a1 , a4 a4 | a3 a1 , a4 a4  (words of ``token_width`` tokens, ',' between)

Length is the number of source tokens, drawn uniformly (with replacement, except ``unique``)
from an alphabet of ``alphabet_size`` symbols ``a0 .. a{k-1}``. For ``multi_token`` length is
the number of words, each ``token_width`` symbols, separated by ``,`` (the source has
``length * (token_width + 1) - 1`` tokens; ``,`` is in the vocabulary of this variant only).

``prompt=True`` starts every source with a fixed instruction token ``<copy>``, as the
authors' sequences start with their task's instruction ("Copy:", "Replace X with Y in"):
a fixed first token that a relative-position model can measure distances from. Kazemnejad et
al.'s "replace" tasks are ``repeat_change``; ``replace`` (one symbol substituted in a random
sequence) is a different task.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks import base

VARIANTS = ("plain", "repeat", "repeat_change", "replace", "twice", "unique", "multi_token")
PROMPT = "<copy>"


@dataclasses.dataclass(frozen=True)
class SequenceTask:
  """Shared machinery of tasks whose answer is a function of a random token sequence."""

  alphabet_size: int = 16
  name = "sequence"
  kind = "decoder"   # decoder tasks: causal next-token layout; encoder tasks: "encoder"

  def __post_init__(self):
    if not isinstance(self.alphabet_size, int) or self.alphabet_size < 2:
      raise ValueError(f"task {self.name!r}: alphabet_size must be an integer >= 2, "
                       f"got {self.alphabet_size!r}")

  @property
  def vocab(self) -> list[str]:
    return [base.PAD, base.SEP, base.EOS] + [f"a{i}" for i in range(self.alphabet_size)]

  @property
  def sep_id(self) -> int:
    return 1

  @property
  def eos_id(self) -> int:
    return 2

  def source(self, rng: np.random.Generator, batch_size: int, length: int) -> np.ndarray:
    return rng.integers(3, 3 + self.alphabet_size, size=(batch_size, length), dtype=np.int32)

  def answer(self, source: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def solve(self, source: list[int]) -> list[int]:
    """The answer of one example, computed independently of ``answer`` (for verification)."""
    raise NotImplementedError

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    base.check_length(self.name, length)
    source = self.source(rng, batch_size, length)
    return base.decoder_batch(source, self.answer(source), self.sep_id, self.eos_id)

  def verify(self, row: np.ndarray) -> bool:
    """True if the answer after the separator is ``solve(source)`` followed by nothing."""
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row: np.ndarray) -> str:
    return base.render_tokens(self.vocab, row)


@dataclasses.dataclass(frozen=True)
class Copy(SequenceTask):
  variant: str = "plain"
  token_width: int = 3
  prompt: bool = False
  name = "copy"

  def __post_init__(self):
    super().__post_init__()
    if self.variant not in VARIANTS:
      raise ValueError(f"task 'copy': unknown variant {self.variant!r}; valid variants: "
                       f"{', '.join(VARIANTS)}")
    if not isinstance(self.token_width, int) or self.token_width < 1:
      raise ValueError(f"task 'copy': token_width must be a positive integer; "
                       f"got {self.token_width!r}")
    base.check_bool_options(self, "prompt")

  @property
  def vocab(self) -> list[str]:
    return (super().vocab + ([","] if self.variant == "multi_token" else [])
            + ([PROMPT] if self.prompt else []))

  def sample(self, rng, batch_size, length):
    if self.variant == "unique":
      base.check_length(self.name, length, maximum=self.alphabet_size)
    return super().sample(rng, batch_size, length)

  def source(self, rng, batch_size, length):
    source = self._source(rng, batch_size, length)
    if self.prompt:
      prompt = np.full((batch_size, 1), self.vocab.index(PROMPT), np.int32)
      source = np.concatenate([prompt, source], axis=1)
    return source

  def _source(self, rng, batch_size, length):
    if self.variant in ("repeat", "repeat_change"):
      token = rng.integers(3, 3 + self.alphabet_size, size=(batch_size, 1), dtype=np.int32)
      repeated = np.repeat(token, length, axis=1)
      if self.variant == "repeat":
        return repeated
      # The new token: uniform over the other symbols.
      new = 3 + (token - 3 + rng.integers(1, self.alphabet_size, size=(batch_size, 1))
                 ) % self.alphabet_size
      return np.concatenate([token, new.astype(np.int32), repeated], axis=1)
    if self.variant == "unique":
      order = np.argsort(rng.random((batch_size, self.alphabet_size)), axis=1)
      return (order[:, :length] + 3).astype(np.int32)
    if self.variant == "multi_token":
      words = super().source(rng, batch_size, length * self.token_width)
      words = words.reshape(batch_size, length, self.token_width)
      comma = np.full((batch_size, length, 1), 3 + self.alphabet_size, dtype=np.int32)
      return np.concatenate([words, comma], axis=-1).reshape(batch_size, -1)[:, :-1]
    return super().source(rng, batch_size, length)

  def answer(self, source):
    if self.prompt:
      source = source[:, 1:]
    if self.variant == "repeat_change":
      return np.repeat(source[:, 1:2], source.shape[1] - 2, axis=1).astype(np.int32)
    if self.variant == "replace":
      return np.where(source == 3, 4, source).astype(np.int32)
    if self.variant == "twice":
      return np.concatenate([source, source], axis=1)
    return source.copy()

  def solve(self, source):
    if self.prompt:
      source = source[1:]
    if self.variant == "repeat_change":
      return [source[1]] * (len(source) - 2)
    if self.variant == "replace":
      return [4 if t == 3 else t for t in source]
    return list(source) * (2 if self.variant == "twice" else 1)

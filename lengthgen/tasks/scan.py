"""SCAN (Lake & Baroni 2018): translate a navigation command into its action sequence.

    jump twice after walk left | LTURN WALK JUMP JUMP
    turn opposite right        | RTURN RTURN
    look around left           | LTURN LOOK LTURN LOOK LTURN LOOK LTURN LOOK

Commands come from the SCAN grammar (no downloads): every one of its 20,910 commands is
enumerated at construction, each with its actions, and grouped by output length.

Length is the number of output actions, as in SCAN's length split (train on short action
sequences, test on long ones; the original split trains on at most 22 actions and tests on
24..48). ``sample(rng, b, n)`` draws commands uniformly among those with exactly ``n``
actions, which is the conditional distribution of the SCAN data set given the length.
Lengths run from 1 to 48 but not all are reachable (e.g. 47: no command has 47 actions);
impossible lengths raise ``ValueError`` listing the valid ones (``valid_lengths``), unless
``missing="next"``: then an unreachable length in 1..48 draws commands of the next reachable
length above it (23 -> 24), so an evaluation over every length 1..48 runs through.

The command is 1..9 words long, so rows of one batch differ in width: every row is laid out
``command | actions <eos>`` and right-padded with token 0 (no loss) to the longest command
of that output length, so the shape depends on the length only.

``prompt=True`` starts every row with a fixed instruction token ``<solve>``, as Kazemnejad et
al.'s SCAN split (``mdlen_tr25_ts48``, their ``scan_bos`` processor) starts every command with
"Solve:": ``<solve> jump twice | JUMP JUMP``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lengthgen.tasks import base

PRIMITIVES = ("walk", "look", "run", "jump")
WORDS = PRIMITIVES + ("turn", "left", "right", "opposite", "around", "twice", "thrice",
                      "and", "after")
ACTIONS = ("WALK", "LOOK", "RUN", "JUMP", "LTURN", "RTURN")
MAX_WORDS = 9
MISSING = ("error", "next")
PROMPT = "<solve>"


def _enumerate() -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
  """All SCAN commands with their actions, built bottom-up through the grammar's rules."""
  turn = {"left": "LTURN", "right": "RTURN"}
  # U and "turn": the action of the verb itself (turn has none).
  verbs = [((u,), (u.upper(),)) for u in PRIMITIVES] + [(("turn",), ())]
  v_phrases = [((u,), (u.upper(),)) for u in PRIMITIVES]          # V -> U
  for words, act in verbs:
    for d in ("left", "right"):
      t = (turn[d],)
      v_phrases.append((words + (d,), t + act))                           # D -> U d | turn d
      v_phrases.append((words + ("opposite", d), t + t + act))            # opposite
      v_phrases.append((words + ("around", d), (t + act) * 4))            # around
  s_phrases = []
  for words, act in v_phrases:
    s_phrases += [(words, act), (words + ("twice",), act * 2), (words + ("thrice",), act * 3)]
  commands = list(s_phrases)
  for w1, a1 in s_phrases:
    for w2, a2 in s_phrases:
      commands.append((w1 + ("and",) + w2, a1 + a2))
      commands.append((w1 + ("after",) + w2, a2 + a1))
  return commands


@functools.lru_cache(maxsize=1)
def _table():
  """Word ids [C, 9], word counts [C], action ids [C, 48], action counts [C] of every command."""
  commands = _enumerate()
  words = np.zeros((len(commands), MAX_WORDS), np.int32)
  acts = np.zeros((len(commands), 48), np.int32)
  n_words = np.zeros(len(commands), np.int32)
  n_acts = np.zeros(len(commands), np.int32)
  for i, (w, a) in enumerate(commands):
    words[i, :len(w)] = [3 + WORDS.index(x) for x in w]
    acts[i, :len(a)] = [3 + len(WORDS) + ACTIONS.index(x) for x in a]
    n_words[i], n_acts[i] = len(w), len(a)
  by_length = {int(n): np.flatnonzero(n_acts == n) for n in np.unique(n_acts)}
  return words, n_words, acts, n_acts, by_length


def interpret(command: list[str]) -> list[str]:
  """SCAN's interpretation function, applied to one command by parsing it top-down."""
  for conj in ("and", "after"):
    if conj in command:
      i = command.index(conj)
      x1, x2 = interpret(command[:i]), interpret(command[i + 1:])
      return x1 + x2 if conj == "and" else x2 + x1
  if command[-1] in ("twice", "thrice"):
    return interpret(command[:-1]) * (2 if command[-1] == "twice" else 3)
  verb = [] if command[0] == "turn" else [command[0].upper()]
  if len(command) == 1:
    if not verb:
      raise ValueError("'turn' needs a direction")
    return verb
  direction = {"left": ["LTURN"], "right": ["RTURN"]}[command[-1]]
  if len(command) == 2:
    return direction + verb
  if command[1] == "opposite":
    return direction + direction + verb
  if command[1] == "around":
    return (direction + verb) * 4
  raise ValueError(f"not a SCAN command: {' '.join(command)!r}")


@dataclasses.dataclass(frozen=True)
class Scan:
  missing: str = "error"
  prompt: bool = False
  name = "scan"
  kind = "decoder"
  sep_id = 1
  eos_id = 2

  def __post_init__(self):
    if self.missing not in MISSING:
      raise ValueError(f"task 'scan': unknown missing {self.missing!r}; valid choices: "
                       f"{', '.join(MISSING)}")
    base.check_bool_options(self, "prompt")

  @property
  def vocab(self) -> list[str]:
    return ([base.PAD, base.SEP, base.EOS] + list(WORDS) + list(ACTIONS)
            + ([PROMPT] if self.prompt else []))

  @staticmethod
  def valid_lengths() -> list[int]:
    return sorted(_table()[4])

  def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> base.Batch:
    words, n_words, acts, _, by_length = _table()
    if (self.missing == "next" and isinstance(length, (int, np.integer))
        and 1 <= length <= max(by_length)):
      length = min(n for n in by_length if n >= length)
    if not isinstance(length, (int, np.integer)) or int(length) not in by_length:
      raise ValueError(f"task 'scan': length must be a number of output actions that some "
                       f"SCAN command has, one of {self.valid_lengths()}; got {length!r}")
    pool = by_length[int(length)]
    idx = pool[rng.integers(0, len(pool), size=batch_size)]
    w = n_words[idx][:, None]                                    # [B, 1]
    width = int(n_words[pool].max()) + 1 + length
    col = np.arange(width)[None]                                 # [1, W]
    cmd = np.take_along_axis(words[idx], np.minimum(col, MAX_WORDS - 1), axis=1)
    act = np.take_along_axis(acts[idx], np.clip(col - w - 1, 0, 47), axis=1)
    tokens = np.where(col < w, cmd, np.where(col == w, self.sep_id,
                                             np.where(col <= w + length, act, 0)))
    targets = np.zeros_like(tokens)
    targets[:, :-1] = tokens[:, 1:]
    targets = np.where(col == w + length, self.eos_id, targets)
    loss_mask = (col >= w) & (col <= w + length)
    if self.prompt:  # the prompt predicts the first command word (no loss)
      prompt = np.full((batch_size, 1), len(self.vocab) - 1)
      targets = np.concatenate([tokens[:, :1], targets], axis=1)
      tokens = np.concatenate([prompt, tokens], axis=1)
      loss_mask = np.concatenate([np.zeros((batch_size, 1), bool), loss_mask], axis=1)
    return base.Batch(tokens.astype(np.int32), targets.astype(np.int32), loss_mask)

  def solve(self, source):
    source = list(source)[1:] if self.prompt else list(source)
    actions = interpret([self.vocab[t] for t in source])
    return [self.vocab.index(a) for a in actions]

  def verify(self, row) -> bool:
    return base.verify_decoder_row(row, self.sep_id, self.solve)

  def render(self, row) -> str:
    return base.render_tokens(self.vocab, row)

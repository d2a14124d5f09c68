"""Stack manipulation (Deletang et al. 2023): run push/pop actions on a given stack.

    0 1 1 0 PUSH1 POP POP -> 1 1 0 $        (stack given bottom-to-top, answer top-to-bottom)
    1 1 0 POP POP POP -> $                  (empty stack)

The input is a stack of k bits (k uniform in 1 .. n-1) then n - k actions, each uniform
among POP, PUSH0, PUSH1; POP on an empty stack does nothing. Length n is the number of
input tokens; the answer has n + 1 slots: the final stack top first, the end marker ``$``,
then ``0`` padding (supervised only with ``supervise_padding=True``). At length 1 the input
is one bit and the answer that bit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lengthgen.tasks.chomsky.common import EncoderTask, random_bits

POP, PUSH0, PUSH1, END = 2, 3, 4, 5   # symbol codes; 0 and 1 are the bits


def end_masked(answers: np.ndarray, ends: np.ndarray, supervise_padding: bool):
  """Loss mask of slots up to and including the end marker at ``ends`` (or all slots)."""
  if supervise_padding:
    return None
  return np.arange(answers.shape[1])[None, :] <= ends[:, None]


@dataclasses.dataclass(frozen=True)
class StackManipulation(EncoderTask):
  supervise_padding: bool = False
  name = "stack_manipulation"
  symbols = ("0", "1", "POP", "PUSH0", "PUSH1", "$")

  def output_length(self, length):
    return length + 1

  def generate(self, rng, batch_size, length):
    rows = np.arange(batch_size)
    if length == 1:
      codes = random_bits(rng, batch_size, 1)
    else:
      stack_size = rng.integers(1, length, size=batch_size)
      bits = random_bits(rng, batch_size, length)
      actions = rng.integers(POP, END, size=(batch_size, length))
      codes = np.where(np.arange(length)[None, :] < stack_size[:, None], bits, actions)
    # The initial stack is the same as pushing its bits in order.
    stack = np.zeros((batch_size, length), np.int64)
    top = np.zeros(batch_size, np.int64)
    for t in range(length):
      c = codes[:, t]
      push = c != POP
      stack[rows[push], top[push]] = np.where(c < 2, c, c - PUSH0)[push]
      top = np.where(push, top + 1, np.maximum(top - 1, 0))
    slots = np.arange(length + 1)[None, :]
    from_top = np.take_along_axis(stack, np.clip(top[:, None] - 1 - slots, 0, length - 1), 1)
    answers = np.where(slots < top[:, None], from_top, np.where(slots == top[:, None], END, 0))
    return codes, answers, end_masked(answers, top, self.supervise_padding)

  def solve(self, inputs):
    # Scan backwards: a pushed bit survives unless a later, still-unmatched POP removes it.
    pending_pops, survivors = 0, []
    for token in reversed(inputs):
      if token == "POP":
        pending_pops += 1
      elif pending_pops:
        pending_pops -= 1
      else:
        survivors.append(token[-1])    # "0", "1", "PUSH0", "PUSH1" -> the bit
    answer = survivors + ["$"]
    if self.supervise_padding:
      answer += ["0"] * (len(inputs) + 1 - len(answer))
    return answer

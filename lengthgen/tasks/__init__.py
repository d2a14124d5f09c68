"""Algorithmic tasks behind one contract (see ``base``) and a registry.

    task = tasks.get("copy", alphabet_size=16)
    batch = task.sample(np.random.default_rng(0), batch_size=8, length=20)
"""

from __future__ import annotations

from lengthgen.tasks.base import Batch, Task, concat_batches, pad_batch
from lengthgen.tasks.chomsky import CHOMSKY_TASKS
from lengthgen.tasks.addition import Addition
from lengthgen.tasks.copy import Copy
from lengthgen.tasks.hints import HINT_TASKS
from lengthgen.tasks.lego import Lego
from lengthgen.tasks.parity import Parity
from lengthgen.tasks.polynomial import Polynomial
from lengthgen.tasks.rasp import Count, Mode
from lengthgen.tasks.recall import Recall
from lengthgen.tasks.recall_stream import RecallStream
from lengthgen.tasks.reverse import Reverse
from lengthgen.tasks.scan import Scan
from lengthgen.tasks.sort import Sort
from lengthgen.tasks.sort_numbers import SortNumbers
from lengthgen.tasks.summation import Summation

TASKS = {
    "copy": Copy,
    "reverse": Reverse,
    "sort": Sort,
    "parity": Parity,
    "addition": Addition,
    "count": Count,
    "mode": Mode,
    "recall": Recall,
    "recall_stream": RecallStream,
    "summation": Summation,
    "polynomial": Polynomial,
    "sort_numbers": SortNumbers,
    "lego": Lego,
    "scan": Scan,
    **CHOMSKY_TASKS,
    **HINT_TASKS,
}


def get(name: str, **options) -> Task:
  """Builds the task ``name`` with ``options``; unknown names list the valid ones."""
  if name not in TASKS:
    raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
  try:
    return TASKS[name](**options)
  except TypeError as e:
    raise ValueError(f"task {name!r}: bad options {options}: {e}") from None


__all__ = ["TASKS", "Batch", "Task", "get", "concat_batches", "pad_batch"]

"""Checkpoints in ``WORKDIR/checkpoints`` through orbax's CheckpointManager.

``restore_latest`` walks back from the newest step: a checkpoint that a crash left
incomplete or corrupt is skipped with a warning naming it, and the previous good one is
used, so no crash costs more than one checkpoint interval.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import orbax.checkpoint as ocp


class CheckpointWarning(UserWarning):
  """A checkpoint could not be restored and was skipped."""


class Checkpointer:
  """Saves and restores the training state pytree of one workdir."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False))

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    self._manager.wait_until_finished()

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any] | None:
    """The newest restorable (step, state), or None if there is no usable checkpoint.

    An unrestorable checkpoint is moved aside to ``<step>.corrupt`` (kept for inspection,
    never deleted) so that training can save that step again.
    """
    skipped = False
    try:
      for step in reversed(self.all_steps()):
        try:
          state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
          return step, state
        except Exception as e:  # noqa: BLE001 -- any failure means this checkpoint is unusable
          path = os.path.join(self.directory, str(step))
          aside = f"{path}.corrupt"
          n = 1
          while os.path.exists(aside):
            aside, n = f"{path}.corrupt{n}", n + 1
          os.rename(path, aside)
          skipped = True
          warnings.warn(
              f"skipping checkpoint step {step} in {self.directory}: it could not be restored "
              f"({type(e).__name__}: {str(e)[:200]}); moved it to {aside} and trying the "
              "previous one", CheckpointWarning, stacklevel=2)
      return None
    finally:
      if skipped:
        self._manager.reload()

  def resume(self, state: Any) -> tuple[int, Any]:
    """(step, state) of the newest good checkpoint, announced; (0, ``state``) if none."""
    restored = self.restore_latest(state)
    if restored is None:
      return 0, state
    print(f"Resuming from checkpoint step {restored[0]} in {self.directory}", flush=True)
    return restored

  def close(self) -> None:
    self._manager.close()

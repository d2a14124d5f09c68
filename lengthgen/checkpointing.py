"""Checkpoints in ``WORKDIR/checkpoints`` through orbax's CheckpointManager.

Every saved step gets a digest file (sha256 of each of its files; a step without one, killed
between orbax's commit and the digest, relies on orbax's own completeness checks). ``restore_latest`` walks
back from the newest step and tells two failures apart:

* a checkpoint that is unreadable, incomplete or damaged (its files no longer match their
  digests) is skipped with a warning naming it, moved aside to ``<step>.corrupt`` (never
  deleted) and the previous good one is used, so no crash costs more than one checkpoint
  interval;
* a readable checkpoint whose parameter tree does not fit the model being restored raises
  ``CheckpointMismatch`` naming the parameters that differ; nothing is renamed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp

from lengthgen.config import ConfigError

DIGEST_FILE = "lengthgen_sha256.json"


class CheckpointWarning(UserWarning):
  """A checkpoint could not be restored and was skipped."""


class CheckpointMismatch(ConfigError):
  """A readable checkpoint holds a state of another shape than the model's."""


class DiskFull(OSError):
  """No space was left to write a checkpoint."""


def _digests(step_dir: str) -> dict[str, str]:
  out = {}
  for root, _, files in os.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir)
      if rel == DIGEST_FILE:
        continue
      h = hashlib.sha256()
      with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
          h.update(chunk)
      out[rel] = h.hexdigest()
  return dict(sorted(out.items()))


def _shapes(tree) -> dict[str, tuple]:
  """Leaf path -> (shape, dtype) of a state or of orbax's metadata of it."""
  leaves = jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))[0]
  out = {}
  for path, leaf in leaves:
    keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
    out["/".join(keys)] = (tuple(leaf.shape), str(jax.numpy.dtype(leaf.dtype)))
  return out


def _is_disk_full(e: BaseException) -> bool:
  text = f"{type(e).__name__}: {e}"
  return (getattr(e, "errno", None) == errno.ENOSPC or "No space left" in text
          or "ENOSPC" in text or ("RESOURCE_EXHAUSTED" in text and "space" in text.lower()))


class Checkpointer:
  """Saves and restores the training state pytree of one workdir."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=False),
        item_handlers=ocp.StandardCheckpointHandler())  # known up front: metadata reads

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(self, step: int, state: Any) -> None:
    """Saves ``state`` as ``step`` with its digest file.

    Raises:
      DiskFull: the filesystem ran out of space (the message names the directory).
    """
    try:
      self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
      self._manager.wait_until_finished()
      with open(os.path.join(self.step_dir(step), DIGEST_FILE), "w") as f:
        json.dump(_digests(self.step_dir(step)), f, indent=0)
    except Exception as e:  # noqa: BLE001 -- only disk-full is translated; the rest re-raised
      if _is_disk_full(e):
        raise DiskFull(errno.ENOSPC, f"no space left on the device while saving checkpoint "
                       f"step {step} in {self.directory}") from e
      raise

  def verify(self, step: int) -> str | None:
    """Why checkpoint ``step`` is damaged (files differ from their digests), or None."""
    path = os.path.join(self.step_dir(step), DIGEST_FILE)
    if not os.path.exists(path):
      return None  # saved by orbax, killed before its digest: orbax's own checks apply
    with open(path) as f:
      want = json.load(f)
    got = _digests(self.step_dir(step))
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    return f"files differ from their digests: {', '.join(bad[:5])}" if bad else None

  def _mismatch(self, step: int, abstract_state: Any) -> str | None:
    """The parameters whose shape or dtype differ between checkpoint and model, or None."""
    saved = _shapes(self._manager.item_metadata(step).tree)
    want = _shapes(abstract_state)
    if saved == want:
      return None
    lines = []
    for key in sorted(set(saved) | set(want), key=lambda k: (not k.startswith("params/"), k)):
      a, b = saved.get(key, "absent"), want.get(key, "absent")
      if a != b:
        lines.append(f"  {key}: {a} in the checkpoint, {b} in the model")
    more = f"\n  ... and {len(lines) - 12} more" if len(lines) > 12 else ""
    return "\n".join(lines[:12]) + more

  def restore_latest(self, abstract_state: Any) -> tuple[int, Any] | None:
    """The newest restorable (step, state), or None if there is no usable checkpoint.

    Raises:
      CheckpointMismatch: the newest readable checkpoint does not fit ``abstract_state``.
    """
    skipped = False
    try:
      for step in reversed(self.all_steps()):
        try:
          problem = self.verify(step)
          if problem is None:
            mismatch = self._mismatch(step, abstract_state)
            if mismatch is not None:
              raise CheckpointMismatch(
                  f"checkpoint step {step} in {self.directory} does not fit the model being "
                  f"restored (nothing was renamed or retrained):\n{mismatch}\nThe workdir's "
                  "run and this code or config build different parameters; use another "
                  "--workdir, or --new_run to keep that run under previous_runs/.")
            state = self._manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
            return step, state
        except CheckpointMismatch:
          raise
        except Exception as e:  # noqa: BLE001 -- any failure to read means it is unusable
          problem = f"{type(e).__name__}: {str(e)[:200]}"
        aside = f"{self.step_dir(step)}.corrupt"
        n = 1
        while os.path.exists(aside):
          aside, n = f"{self.step_dir(step)}.corrupt{n}", n + 1
        os.rename(self.step_dir(step), aside)
        skipped = True
        warnings.warn(
            f"skipping checkpoint step {step} in {self.directory}: it could not be restored "
            f"({problem}); moved it to {aside} and trying the previous one",
            CheckpointWarning, stacklevel=2)
      return None
    finally:
      if skipped:
        self._manager.reload()

  def resume(self, state: Any) -> tuple[int, Any]:
    """(step, state) of the newest good checkpoint, announced; (0, ``state``) if none."""
    restored = self.restore_latest(state)
    if restored is None:
      return 0, state
    logging.info("Resuming from checkpoint step %d in %s", restored[0], self.directory)
    return restored

  def close(self) -> None:
    self._manager.close()

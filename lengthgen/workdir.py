"""A workdir: the directory that owns one run (layout and results.json schema: docs/workdir.md).

``prepare_workdir`` creates it or checks that it holds the same config; ``restore`` rebuilds a
workdir's run from its own config.json and restores its newest usable checkpoint (for
resuming, fine-tuning and notebooks alike).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time

from absl import logging
import jax
import jax.numpy as jnp

from lengthgen import build, data
from lengthgen.checkpointing import Checkpointer
from lengthgen.config import ConfigError, ExperimentConfig
from lengthgen.metrics import SUMMARY_DIR


class WorkdirConflict(ConfigError):
  """The workdir holds a run with a different config."""


class WorkdirBusy(ConfigError):
  """Another process holds the workdir's lock."""


LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # workdirs this process holds the lock of -> nesting depth


@contextlib.contextmanager
def lock(workdir: str):
  """Holds the workdir's exclusive lock (``WORKDIR/.lock``, ``fcntl.flock``) for a block.

  The operating system releases the lock when its process dies, so a lock left by a killed
  process is taken over (and said so); a live holder makes this raise ``WorkdirBusy`` naming
  its process. Nested use in one process is allowed.

  Raises:
    WorkdirBusy: another running process holds the lock.
  """
  key = os.path.realpath(workdir)
  if key in _held:
    _held[key] += 1
    try:
      yield
    finally:
      _held[key] -= 1
    return
  os.makedirs(workdir, exist_ok=True)
  f = open(os.path.join(workdir, LOCK_FILE), "a+")
  try:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      owner = f.read().strip() or "another process"
      raise WorkdirBusy(f"workdir {workdir} is in use by {owner}; wait for that run to finish "
                        "or stop it, or use another --workdir") from None
    f.seek(0)
    stale = f.read().strip()
    if stale:
      logging.warning("Taking over the lock of %s left by %s, which is no longer running",
                      workdir, stale)
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()} on {socket.gethostname()} (since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')})")
    f.flush()
    _held[key] = 1
    try:
      yield
    finally:
      del _held[key]
      f.seek(0)
      f.truncate()
      f.flush()
      fcntl.flock(f, fcntl.LOCK_UN)
  finally:
    f.close()


_RUN_OUTPUTS = ("config.json", "checkpoints", "metrics.jsonl", SUMMARY_DIR, "results.json",
                "length_generalization.png")


def prepare_workdir(config: ExperimentConfig, workdir: str, *, overwrite: bool = False,
                    new_run: bool = False) -> None:
  """Creates the workdir, or checks that an existing one holds the same config.

  Raises:
    WorkdirConflict: the workdir's config.json differs (the message lists the differences),
      unless ``overwrite`` (delete the previous run's outputs) or ``new_run`` (move them to
      ``WORKDIR/previous_runs/<n>/`` and start afresh; nothing is lost).
  """
  if overwrite and new_run:
    raise ConfigError("choose one of --overwrite and --new_run, not both")
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  new = json.loads(json.dumps(config.to_dict()))
  if os.path.exists(path):
    try:
      with open(path) as f:
        old = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
      if not (overwrite or new_run):
        raise ConfigError(f"{path} is not a readable config ({type(e).__name__}: {e}); "
                          "use --new_run to keep that workdir's files under previous_runs/ "
                          "and start afresh, --overwrite to delete them, or another "
                          "--workdir") from None
      old = {"<unreadable config.json>": True}
    try:  # a field added after that run was written takes its default, as it did then
      old = json.loads(json.dumps(ExperimentConfig.from_dict(old).to_dict()))
    except (ValueError, TypeError):
      pass  # a field this version no longer has: compare as written (the diff names it)
    if old != new:
      if not (overwrite or new_run):
        diff = "\n".join(f"  {k}: {a!r} (in workdir) -> {b!r} (now)"
                         for k, a, b in diff_configs(old, new))
        raise WorkdirConflict(
            f"workdir {workdir} holds a run with a different config:\n{diff}\n"
            "Use another --workdir, --new_run to keep that run under previous_runs/ and start "
            "a new one here, or --overwrite to delete it.")
      archive = None
      if new_run:
        n = 1
        while os.path.exists(os.path.join(workdir, "previous_runs", str(n))):
          n += 1
        archive = os.path.join(workdir, "previous_runs", str(n))
        os.makedirs(archive)
      for name in _RUN_OUTPUTS:
        p = os.path.join(workdir, name)
        if not os.path.exists(p):
          continue
        if archive is not None:
          shutil.move(p, os.path.join(archive, name))
        elif os.path.isdir(p):
          shutil.rmtree(p)
        else:
          os.remove(p)
  with open(path, "w") as f:
    json.dump(new, f, indent=2)


def diff_configs(old, new, prefix=""):
  """Yields (dotted field, old value, new value) for every field where two config dicts
  differ (``"<absent>"`` for a missing field)."""
  keys = sorted(set(old) | set(new)) if isinstance(old, dict) and isinstance(new, dict) else None
  if keys is None:
    if old != new:
      yield prefix, old, new
    return
  for k in keys:
    yield from diff_configs(old.get(k, "<absent>"), new.get(k, "<absent>"),
                            f"{prefix}.{k}".lstrip("."))


def stack(trees):
  """Leaf-wise stack of equal-structure trees (one per seed) along a new leading axis."""
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def initial_state(setup: build.Setup, tx):
  """The initial state of every seed of a run: stacked along a leading seed axis when
  ``num_seeds > 1``."""
  states = [build.init_state(setup.model, tx, data.training_inputs(setup, 0, c.train.seed),
                             c.train.seed)
            for c in build.seed_configs(setup.config)]
  return stack(states) if len(states) > 1 else states[0]


def read_config(workdir: str, *, what: str = "workdir") -> ExperimentConfig:
  """The validated config.json of a workdir; ``what`` prefixes the error messages."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise ConfigError(f"{what}: {workdir} is not a workdir (no config.json)")
  with open(path) as f:
    return build.load_config(json.load(f))


def restore(workdir: str, *, what: str = "workdir"):
  """(config, setup, step, state) of the newest usable checkpoint of a workdir.

  The workdir's own config.json rebuilds its state so orbax can restore it; with
  ``num_seeds > 1`` every leaf of the state has a leading seed axis. ``what`` prefixes the
  error messages (the config field or argument that named the workdir).
  """
  config = read_config(workdir, what=what)
  setup = build.setup(config)
  tx = build.make_optimizer(config.train)
  ckpt = Checkpointer(workdir)
  try:
    restored = ckpt.restore_latest(jax.eval_shape(lambda: initial_state(setup, tx)))
  finally:
    ckpt.close()
  if restored is None:
    raise ConfigError(f"{what}: {workdir} has no usable checkpoint")
  return config, setup, restored[0], restored[1]


def parent_params(parent_workdir: str, like_params, num_seeds: int = 1):
  """The parameters of a parent run's newest checkpoint, for fine-tuning.

  With ``num_seeds > 1`` (``like_params`` has a leading seed axis) seed i starts from the
  parent's seed i when the parent trained as many seeds, otherwise every seed starts from the
  parent's first seed. The parameter tree must match this run's model (the same architecture
  and task mixture; encodings and lengths may differ where they own no parameters).
  """
  parent, _, _, state = restore(parent_workdir, what="config.train.init_from")
  params = state["params"]
  parent_seeds = parent.train.num_seeds
  if parent_seeds > 1 and (num_seeds == 1 or parent_seeds != num_seeds):
    params = jax.tree.map(lambda x: x[0], params)
    parent_seeds = 1
  if num_seeds > 1 and parent_seeds == 1:
    params = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_seeds,) + x.shape), params)
  want = jax.tree.map(lambda x: (x.shape, str(x.dtype)), like_params)
  got = jax.tree.map(lambda x: (x.shape, str(x.dtype)), params)
  if want != got:
    diff = [f"  {'/'.join(str(getattr(k, 'key', k)) for k in kp)}: {shape}"
            for kp, shape in jax.tree_util.tree_flatten_with_path(
                want, is_leaf=lambda x: isinstance(x, tuple) and len(x) == 2
                and isinstance(x[1], str))[0]]
    raise ConfigError(
        f"config.train.init_from: the parameters of {parent_workdir} do not match this model "
        f"(parent: {parent.model.positional}, {parent.model.num_layers} layers, width "
        f"{parent.model.width}, tasks {parent.task_names}); this model expects:\n"
        + "\n".join(diff[:20]))
  return params

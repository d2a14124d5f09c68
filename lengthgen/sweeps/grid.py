"""The grid of a sweep: its points, the command that trains each, and what is left to run.

A grid point is one workdir, ``<task>_<encoding>[_<positions>]_<normalizer>_s<seed>`` (or
``..._s<first>x<count>`` when the seeds of a point train in one program, vmapped), trained
by one ``lengthgen-train`` process. ``plan`` sorts the points of a sweep directory into
finished (skipped), changed (finished with another config) and to run (new, interrupted or
failed: an interrupted one resumes from its own checkpoints).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import sys
from typing import Sequence

from lengthgen import configs
from lengthgen.config import NORMALIZER_MODIFIERS, ExperimentConfig
from lengthgen.workdir import diff_configs

TRAIN_MODULE = "lengthgen.cli"  # what ``python -m`` runs for a point: lengthgen-train


@dataclasses.dataclass(frozen=True)
class Point:
  """One grid point: its workdir, log file and the flags of its ``lengthgen-train`` run
  (``python -m module``, the module fixed when the point is planned)."""
  name: str
  workdir: str
  log: str
  args: tuple[str, ...]
  module: str = TRAIN_MODULE

  def command(self, python: str | None = None) -> list[str]:
    """The point's command line, run by ``python`` (default: the interpreter running it)."""
    return [python or sys.executable, "-m", self.module, *self.args]


def normalizer_overrides(norm: str) -> list[str]:
  """``ssmax+qk_norm`` -> the flags setting normalizer=ssmax and model.qk_norm=True."""
  base, *mods = norm.split("+")
  unknown = [m for m in mods if m not in NORMALIZER_MODIFIERS]
  if unknown:
    raise ValueError(f"normalizer {norm!r}: unknown modifier(s) {unknown}; valid modifiers "
                     f"(joined with +): {', '.join(NORMALIZER_MODIFIERS)}")
  return [f"--config.model.normalizer={base}"] + [f"--config.model.{m}=True" for m in mods]


def grid_points(encodings: Sequence[str], normalizers: Sequence[str], tasks: Sequence[str],
                seeds: Sequence[int], positions: Sequence[str] = ("default",),
                vmap_seeds: bool = False):
  """Yields (name, overrides) per grid point (per seed, or per seed group with vmap_seeds).

  A normalizer may carry modifiers joined with ``+`` (``ssmax+qk_norm``), as results.json
  names it.
  """
  groups = [(seeds[0], len(seeds))] if vmap_seeds else [(s, 1) for s in seeds]
  for task, enc, pos, norm, (seed, count) in itertools.product(
      tasks, encodings, positions, normalizers, groups):
    where = "" if pos == "default" else f"_{pos}"
    which = f"s{seed}x{count}" if vmap_seeds else f"s{seed}"
    overrides = [f"--config.task={task}", f"--config.model.positional={enc}",
                 f"--config.model.positions={pos}", *normalizer_overrides(norm),
                 f"--config.train.seed={seed}"]
    if vmap_seeds:
      overrides.append(f"--config.train.num_seeds={count}")
    yield f"{task}_{enc}{where}_{norm}_{which}", overrides


def config_file(spec: str) -> str:
  """``NAME[:arg]`` or ``FILE[:arg]`` -> an absolute ``FILE[:arg]`` (valid in any directory)."""
  path, colon, arg = configs.resolve(spec).partition(":")
  return os.path.abspath(path) + colon + arg


def config_task(spec: str) -> str:
  """The task of config ``spec``: what the grid trains when no tasks are given."""
  path, _, arg = config_file(spec).partition(":")
  module_spec = importlib.util.spec_from_file_location("lengthgen_sweep_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg).task


def resolved_config(spec: str, overrides: Sequence[str]) -> dict:
  """The config ``lengthgen-train --config=spec *overrides`` trains, as a dict."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  argv = ["sweep", f"--config={config_file(spec)}", *overrides]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config", flag_values=values, sys_argv=argv)
  values(argv)
  return ExperimentConfig.from_dict(values.config).to_dict()


def config_difference(workdir: str, config: dict) -> str:
  """The fields in which a workdir's config.json differs from ``config`` ('' if none)."""
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      old = ExperimentConfig.from_dict(json.load(f)).to_dict()
  except (OSError, ValueError) as e:
    return f"  config.json unreadable: {e}"
  return "\n".join(f"  {k}: {a!r} (in workdir) -> {b!r} (now)"
                   for k, a, b in diff_configs(old, config))


@dataclasses.dataclass
class Plan:
  """What a sweep run does: ``todo`` runs, ``finished`` are skipped, ``changed`` are finished
  points whose config.json differs from what the sweep trains now (name, differing fields)."""
  todo: list[Point]
  finished: list[str]
  changed: list[tuple[str, str]]


def plan(sweep_dir: str, config: str, points, extra: Sequence[str] = (), *,
         new_run_changed: bool = False) -> Plan:
  """Sorts the grid ``points`` ((name, overrides) pairs) of ``sweep_dir``.

  A point with results.json is finished when its config.json equals the config it would
  train now; with another config it is ``changed``, or, with ``new_run_changed``, retrained
  with ``--new_run`` (its old run kept under previous_runs/). Every other point runs:
  ``lengthgen-train`` resumes an interrupted one from its checkpoints.
  """
  sweep_dir = os.path.abspath(sweep_dir)
  spec = config_file(config)
  out = Plan([], [], [])
  for name, overrides in points:
    wd = os.path.join(sweep_dir, name)
    args = [f"--config={spec}", f"--workdir={wd}", *overrides, *extra]
    if os.path.exists(os.path.join(wd, "results.json")):
      difference = config_difference(wd, resolved_config(spec, [*overrides, *extra]))
      if not difference:
        out.finished.append(name)
        continue
      if not new_run_changed:
        out.changed.append((name, difference))
        continue
      args.append("--new_run")
    out.todo.append(Point(name, wd, os.path.join(sweep_dir, f"{name}.log"), tuple(args),
                          TRAIN_MODULE))
  return out

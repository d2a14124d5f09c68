"""Trains a model and measures its length generalization: the ``lengthgen-train`` command.

    lengthgen-train --config=demo --workdir=/tmp/demo
    lengthgen-train --config=demo:tiny --workdir=/tmp/t \
        --config.model.positional=rope --config.train.steps=50
    lengthgen-train --config=path/to/my_config.py:preset --workdir=/tmp/mine

``--config`` is a packaged config's name (``lengthgen.configs.names()``) or a config file,
either followed by ``:arg``. The same is ``python -m lengthgen.cli``, and in a checkout
``python -m experiments.train``.

Every visible device trains data parallel (config.train.param_sharding: replicated | fsdp);
multi-host runs add --coordinator_address=HOST:PORT --num_processes=N --process_id=I.

Rerunning with the same --workdir resumes from its newest checkpoint. A workdir that holds
a run with a different config is refused unless --overwrite (delete it) or --new_run (keep it
under WORKDIR/previous_runs/) is given.
"""

from __future__ import annotations

import sys

from lengthgen import extras

extras.require("ml_collections", "lengthgen-train")
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from lengthgen import configs, metrics, parallel, train  # noqa: E402
from lengthgen.config import ConfigError, ExperimentConfig, default_config_dict  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config name or file, then :presets (e.g. demo:tiny).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory that owns the run.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "Delete a previous run with a different config in --workdir.")
_NEW_RUN = flags.DEFINE_bool("new_run", False,
                             "Keep a previous run with a different config in --workdir under "
                             "previous_runs/ and start a new one.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "Multi-host: host:port of process 0 (or $LENGTHGEN_COORDINATOR).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Multi-host: number of processes (or $LENGTHGEN_NUM_PROCESSES).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "Multi-host: this process's id (or $LENGTHGEN_PROCESS_ID).")
_DISTRIBUTED_AUTO = flags.DEFINE_bool(
    "distributed_auto", False, "Multi-host: let jax.distributed.initialize() detect the cluster "
    "(SLURM, Open MPI, Cloud TPU).")
_TENSORBOARD = flags.DEFINE_bool(
    "tensorboard", True, "Also write the metrics as TensorBoard summaries in "
    "WORKDIR/tensorboard/ (tensorboard --logdir WORKDIR, or a sweep's directory).")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show the full traceback of a configuration or run error.")
flags.mark_flags_as_required(["config", "workdir"])

# Errors a user can act on: printed as one message (and exit 2) unless --verbose.
_USER_ERRORS = (ConfigError, train.NonFiniteLoss, train.DiskFull)


def _unknown_override(argv) -> str | None:
  """A message naming the first --config.<path> override that names no config field."""
  fields = default_config_dict()
  for arg in argv[1:]:
    if not arg.startswith("--config.") or "=" not in arg:
      continue
    node, walked = fields, "config"
    for key in arg[len("--config."):].split("=", 1)[0].split("."):
      if not hasattr(node, "keys"):
        break
      if key not in node:
        return (f"unknown config field {walked}.{key} (in {arg}); valid fields of {walked}: "
                f"{', '.join(node.keys()) or 'none'}")
      node, walked = node[key], f"{walked}.{key}"
  return None


def _resolve_config(argv: list[str]) -> tuple[list[str], str | None]:
  """argv with ``--config``'s name resolved to its file, and the value as given.

  Raises:
    ValueError: the value is neither a file nor a config name (the message lists the names).
  """
  argv, config = list(argv), None
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      config = arg.split("=", 1)[1]
      argv[i] = f"--config={configs.resolve(config)}"
    elif arg == "--config" and i + 1 < len(argv):
      config = argv[i + 1]
      argv[i + 1] = configs.resolve(config)
  return argv, config


def _parse_flags(argv):
  try:
    argv, config = _resolve_config(argv)
  except ValueError as e:
    message = str(e)
  else:
    try:
      return flags.FLAGS(argv)
    except (AttributeError, KeyError) as e:
      message = _unknown_override(argv) or f"bad --config override: {e}"
    except flags.Error as e:  # a malformed value (absl names the flag) or a config file error
      if "--verbose" in argv:
        raise
      message = str(e)
      if "Traceback" in message:  # the config file raised: keep the flag and its last line
        last = [line for line in message.splitlines() if line.strip()][-1]
        message = f"--config={config}: {last}"
  print(f"FATAL Flags parsing error: {message}", file=sys.stderr)
  sys.exit(1)


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  metrics.configure_logging()  # lengthgen's INFO lines on stderr, not orbax's
  try:
    parallel.initialize_from_env(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                 auto=_DISTRIBUTED_AUTO.value)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  try:
    config = ExperimentConfig.from_dict(_CONFIG.value)  # train_and_evaluate validates
    train.train_and_evaluate(config, _WORKDIR.value, overwrite=_OVERWRITE.value,
                             new_run=_NEW_RUN.value, tensorboard=_TENSORBOARD.value)
  except _USER_ERRORS as e:
    if _VERBOSE.value:
      raise
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
  """The console script ``lengthgen-train``: parses sys.argv, trains, evaluates."""
  app.run(_main, flags_parser=_parse_flags)


if __name__ == "__main__":
  main()

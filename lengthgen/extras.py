"""Optional dependencies, and the extra of ``pip install 'lengthgen[...]'`` that installs each.

The core install (jax, flax, optax, orbax, numpy, diffrax) is the library: encodings,
attention, kernels, tasks, the model. Training, config files, the CLI and figures also need
``lengthgen[train]``; the ray and SLURM sweep engines ``[ray]`` and ``[slurm]``; ``[all]`` is
every extra. A module that needs one of these imports it through ``require``, so a
missing one fails with the command that installs it instead of a bare ``No module named``.
"""

from __future__ import annotations

import importlib
import types

# top-level module -> (its distribution on PyPI, the extra that installs it)
EXTRAS = {
    "matplotlib": ("matplotlib", "train"),
    "ml_collections": ("ml-collections", "train"),
    "ray": ("ray", "ray"),
    "submitit": ("submitit", "slurm"),
    "tensorboardX": ("tensorboardX", "train"),
    "tqdm": ("tqdm", "train"),
}


class MissingExtra(ModuleNotFoundError):
  """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, user: str) -> types.ModuleType:
  """Imports ``module`` (a package of EXTRAS, or a module in one) for ``user``, named in the error.

  Raises:
    MissingExtra: ``module`` or a package containing it is not installed. Any other import
      error (a dependency of the optional package missing, say) propagates unchanged.
  """
  dist, extra = EXTRAS[module.split(".")[0]]
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    if not e.name or not (module == e.name or module.startswith(e.name + ".")):
      raise
    raise MissingExtra(f"{user} needs {dist}, which is not installed; install it with "
                       f"pip install 'lengthgen[{extra}]' (or pip install {dist})",
                       name=e.name) from e

"""Optional dependencies, and the extra of ``pip install 'lengthgen[...]'`` that installs each.

The core install (jax, flax, optax, orbax, numpy, diffrax) is the library: encodings,
attention, kernels, tasks, the model. Training, config files, the CLI and figures also need
``lengthgen[train]``. A module that needs one of these imports it through ``require``, so a
missing one fails with the command that installs it instead of a bare ``No module named``.
"""

from __future__ import annotations

import importlib
import types

# top-level module -> (its distribution on PyPI, the extra that installs it)
EXTRAS = {
    "matplotlib": ("matplotlib", "train"),
    "ml_collections": ("ml-collections", "train"),
    "tqdm": ("tqdm", "train"),
}


class MissingExtra(ModuleNotFoundError):
  """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, user: str) -> types.ModuleType:
  """Imports ``module`` (a module of EXTRAS or below one) for ``user``, named in the error.

  Raises:
    MissingExtra: ``module``'s distribution is not installed. Any other import error (a
      dependency of the optional package itself missing, say) propagates unchanged.
  """
  root = module.split(".")[0]
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    if root not in EXTRAS or (e.name or "").split(".")[0] != root:
      raise
    dist, extra = EXTRAS[root]
    raise MissingExtra(f"{user} needs {dist}, which is not installed; install it with "
                       f"pip install 'lengthgen[{extra}]' (or pip install {dist})",
                       name=e.name) from e

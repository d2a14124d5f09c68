"""Parameters between a linen module's ``params`` tree and its ``flax.nnx`` counterpart.

Every module of ``lengthgen.nnx`` names its parameters as the linen module it mirrors does
(``table``; ``query/kernel``; ``hidden/bias``; ``ssmax_scale``; ``w_up``), so its
``nnx.Param`` state, as a nested dict, has exactly the keys and shapes of the linen tree.
Each module's ``from_linen`` builds the module abstractly (``nnx.eval_shape``: no random
initialization is computed) and loads the tree with ``load_linen_params``;
``linen_params`` is the way back.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

import jax.numpy as jnp
from flax import nnx
from flax import traverse_util

M = TypeVar("M", bound=nnx.Module)


def unwrap_params(params: Mapping[str, Any]) -> Mapping[str, Any]:
  """The parameter dict itself, given it or the whole linen variables ``{"params": ...}``."""
  if set(params) == {"params"}:
    return params["params"]
  return params


def load_linen_params(module: nnx.Module, params: Mapping[str, Any]) -> None:
  """Sets every ``nnx.Param`` of ``module`` (in place) from a linen ``params`` tree.

  Args:
    module: an nnx module whose parameters are named as the linen module's (its ``Param``
      values may be abstract, as built by ``nnx.eval_shape``).
    params: the linen module's parameters, e.g. ``variables["params"]`` of its ``init``
      (the whole ``variables`` dict is accepted too), or the sub-tree of one module
      inside a bigger linen model. Arrays keep their dtype.

  Raises:
    ValueError: a parameter is missing, unexpected or of another shape; the message names
      each one by its path.
  """
  state = nnx.state(module, nnx.Param)
  expected = traverse_util.flatten_dict(nnx.to_pure_dict(state), sep="/")
  given = traverse_util.flatten_dict(dict(unwrap_params(params)), sep="/")
  name = type(module).__name__
  missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
  if missing or unexpected:
    raise ValueError(f"{name}: the linen parameters do not match; missing {missing}, "
                     f"unexpected {unexpected} (expected {sorted(expected)})")
  wrong = [f"{path} has shape {tuple(jnp.shape(given[path]))}, the module expects "
           f"{tuple(want.shape)}" for path, want in expected.items()
           if tuple(jnp.shape(given[path])) != tuple(want.shape)]
  if wrong:
    raise ValueError(f"{name}: linen parameters of another shape: {'; '.join(wrong)}")
  values = traverse_util.unflatten_dict(
      {path: jnp.asarray(value) for path, value in given.items()}, sep="/")
  nnx.replace_by_pure_dict(state, values)
  nnx.update(module, state)


def build_from_linen(build: Callable[[nnx.Rngs], M], params: Mapping[str, Any]) -> M:
  """``build(rngs)`` traced abstractly, then loaded with ``params`` (see above)."""
  module = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
  load_linen_params(module, params)
  return module


def linen_params(module: nnx.Module) -> dict[str, Any]:
  """The module's ``nnx.Param`` values as a linen ``params`` tree (nested dict of arrays).

  ``linen_module.apply({"params": linen_params(m)}, ...)`` runs the linen counterpart on
  the nnx module's weights.
  """
  return nnx.to_pure_dict(nnx.state(module, nnx.Param))


def linen_field(params: Mapping[str, Any], *path: str):
  """``params[path[0]][path[1]]...`` (after ``unwrap_params``); ``ValueError`` if absent."""
  node = unwrap_params(params)
  for i, key in enumerate(path):
    if not isinstance(node, Mapping) or key not in node:
      raise ValueError(f"the linen parameters have no {'/'.join(path[:i + 1])}; got keys "
                       f"{sorted(node) if isinstance(node, Mapping) else type(node).__name__}")
    node = node[key]
  return node


class LinenCounterpart(nnx.Module):
  """Base of the ``lengthgen.nnx`` modules: parameters named as in their linen module."""

  def linen_params(self) -> dict[str, Any]:
    """This module's parameters as its linen counterpart's ``params`` tree."""
    return linen_params(self)


def check_linen_module(module: Any, linen_type: type) -> None:
  """Raises ``TypeError`` unless ``module`` is a ``linen_type`` (the module converted from)."""
  if not isinstance(module, linen_type):
    raise TypeError(f"expected a linen {linen_type.__module__}.{linen_type.__qualname__}, "
                    f"got {type(module).__name__}")

"""Writes requirements.lock: the installed version of every package lengthgen's install needs.

    .venv/bin/python scripts/lock.py          # what `make lock` runs

The packages are the dependency closure of ``lengthgen[all,dev,notebooks]`` (what ``make``
installs) read from the installed distributions' metadata, so packages installed into the venv
for other reasons stay out. Run it after upgrading packages in .venv and passing make test;
the header comment of requirements.lock is kept.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("all", "dev", "notebooks")
LOCK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "requirements.lock")


def closure(name: str = "lengthgen", extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
  """Canonical name -> installed version of every distribution ``name[extras]`` needs
  (``name`` itself not included), with environment markers evaluated for this interpreter.

  Raises:
    importlib.metadata.PackageNotFoundError: a needed distribution is not installed.
  """
  found: dict[str, str] = {}
  todo = [(name, frozenset(extras))]
  seen = set()
  while todo:
    dist_name, wanted = todo.pop()
    if (dist_name, wanted) in seen:
      continue
    seen.add((dist_name, wanted))
    dist = importlib.metadata.distribution(dist_name)
    for line in dist.requires or []:
      req = Requirement(line)
      markers = [{"extra": e} for e in wanted] or [{"extra": ""}]
      if req.marker is not None and not any(req.marker.evaluate(m) for m in markers):
        continue
      dep = canonicalize_name(req.name)
      if dep == canonicalize_name(name):  # an extra naming the package itself
        todo.append((dist_name, frozenset(req.extras)))
        continue
      found[dep] = importlib.metadata.version(dep)
      todo.append((dep, frozenset(req.extras)))
  return found


def main() -> None:
  with open(LOCK) as f:
    header = [line for line in f if line.startswith("#")]
  pins = closure()
  with open(LOCK + ".new", "w") as f:
    f.writelines(header)
    f.writelines(f"{n}=={v}\n" for n, v in sorted(pins.items()))
  os.replace(LOCK + ".new", LOCK)
  print(f"{LOCK}: {len(pins)} packages", file=sys.stderr)


if __name__ == "__main__":
  main()

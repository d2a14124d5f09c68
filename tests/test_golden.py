"""Single-task runs reproduce their committed golden outputs bitwise (tests/golden/).

The goldens were written by ``tests/golden/make_goldens.py``; each pins a full config, the
per-length results and a sha256 of every final parameter leaf.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
_spec = importlib.util.spec_from_file_location("make_goldens",
                                               os.path.join(HERE, "make_goldens.py"))
make_goldens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_goldens)


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(make_goldens.GOLDENS))
def test_run_reproduces_golden(name):
  with open(os.path.join(HERE, name, "config.json")) as f:
    config = json.load(f)
  with open(os.path.join(HERE, name, "golden.json")) as f:
    golden = json.load(f)
  got = json.loads(json.dumps(make_goldens.run(config)))
  assert got["results"] == golden["results"]
  assert got["params"] == golden["params"]

"""The README's code examples run as written."""

from __future__ import annotations

import os
import re
import runpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_use_in_your_model_example_runs(capsys):
  runpy.run_path(os.path.join(ROOT, "docs", "use_in_your_model.py"))
  assert "(2, 10, 64)" in capsys.readouterr().out


def test_readme_shows_the_example_verbatim():
  readme = open(os.path.join(ROOT, "README.md")).read()
  example = open(os.path.join(ROOT, "docs", "use_in_your_model.py")).read()
  body = example.split('"""', 2)[2].strip()
  blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
  assert any(body in b for b in blocks), "README's 'Use in your own model' is docs/use_in_your_model.py"

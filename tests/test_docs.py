"""The README's code examples run as written."""

from __future__ import annotations

import os
import re
import runpy

import pytest

from conftest import ROOT, tiny_config


def test_use_in_your_model_example_runs(capsys):
  runpy.run_path(os.path.join(ROOT, "docs", "use_in_your_model.py"))
  assert "(2, 10, 64)" in capsys.readouterr().out


def test_readme_shows_the_example_verbatim():
  readme = open(os.path.join(ROOT, "README.md")).read()
  example = open(os.path.join(ROOT, "docs", "use_in_your_model.py")).read()
  body = example.split('"""', 2)[2].strip()
  blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
  assert any(body in b for b in blocks), "README's 'Use in your own model' is docs/use_in_your_model.py"


@pytest.mark.integration
def test_readme_analysis_example_runs(tmp_path, monkeypatch, capsys):
  # The README's notebook-functions example, on a one-run sweep that is also workdirs/demo.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from lengthgen import train  # pylint: disable=g-import-not-at-top
  readme = open(os.path.join(ROOT, "README.md")).read()
  (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
              if "analysis.TrainedRun" in b]
  monkeypatch.chdir(tmp_path)
  run = tmp_path / "results" / "kazemnejad_copy_cpu" / "copy_nope_softmax_s0"
  train.train_and_evaluate(tiny_config(), str(run), verbose=False)
  (tmp_path / "workdirs").mkdir()
  os.symlink(run, tmp_path / "workdirs" / "demo")
  exec(compile(block, "README.md", "exec"), {})  # pylint: disable=exec-used
  assert "| copy[alphabet_size=8] | 1 | nope |" in capsys.readouterr().out


def test_every_public_name_of_the_library_has_a_docstring():
  """The API reference is the docstrings: every exported class and function has one."""
  import importlib  # pylint: disable=import-outside-toplevel
  import inspect  # pylint: disable=import-outside-toplevel
  missing = []
  for name in ("lengthgen.attention", "lengthgen.positional", "lengthgen.tasks",
               "lengthgen.nnx", "lengthgen.kernels"):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", None) or [a for a in dir(module)
                                                     if not a.startswith("_")]:
      obj = getattr(module, attr)
      if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (obj.__doc__ or "").strip():
        missing.append(f"{name}.{attr}")
  assert not missing, f"public names without a docstring: {missing}"

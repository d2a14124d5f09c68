"""lengthgen as an installed package: extras, config names, and a wheel used outside the checkout."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT, load_file
from lengthgen import configs, extras, metrics

_PYPROJECT = tomllib.loads(open(os.path.join(ROOT, "pyproject.toml")).read())


def _canonical(name: str) -> str:
  return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> set[str]:
  return {_canonical(re.split(r"[<>=!~\[;\s]", r, maxsplit=1)[0]) for r in requirements}


def test_every_optional_module_is_in_its_extra_and_not_in_the_core():
  core = _requirement_names(_PYPROJECT["project"]["dependencies"])
  optional = _PYPROJECT["project"]["optional-dependencies"]
  for module, (dist, extra) in extras.EXTRAS.items():
    assert _canonical(dist) in _requirement_names(optional[extra]), (module, extra)
    assert _canonical(dist) not in core, f"{dist} is a core dependency, not optional"
  [everything] = optional["all"]
  assert set(re.fullmatch(r"lengthgen\[(.*)\]", everything).group(1).split(",")) == {
      extra for _, extra in extras.EXTRAS.values()}, "[all] is every extra lengthgen.extras names"


@pytest.mark.parametrize("path,missing,user", [
    ("lengthgen/plotting.py", "matplotlib", "lengthgen.plotting"),
    ("lengthgen/configs/__init__.py", "ml_collections", "lengthgen.configs"),
    ("lengthgen/cli.py", "ml_collections", "lengthgen-train"),
])
def test_importing_without_the_train_extra_names_it(monkeypatch, path, missing, user):
  # A fresh copy of the module, imported as if `missing` were not installed (None in
  # sys.modules makes Python's import fail for that name); the imported modules stay as they are.
  monkeypatch.setitem(sys.modules, missing, None)
  dist = extras.EXTRAS[missing][0]
  with pytest.raises(extras.MissingExtra,
                     match=re.escape(f"{user} needs {dist}, which is not installed; install it "
                                     f"with pip install 'lengthgen[train]'")):
    load_file(path, f"without_{missing}")


def test_the_progress_bar_without_tqdm_names_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "tqdm", None)
  monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
  with pytest.raises(extras.MissingExtra, match=r"pip install 'lengthgen\[train\]'"):
    metrics.Progress(total=10, start=0, log_every=5)


def test_other_import_errors_propagate_unchanged(monkeypatch):
  # matplotlib present but one of its own imports missing: not reported as a missing extra.
  def broken(name, *args, **kwargs):
    raise ModuleNotFoundError("No module named 'kiwisolver'", name="kiwisolver")
  monkeypatch.setattr(extras.importlib, "import_module", broken)
  with pytest.raises(ModuleNotFoundError) as e:
    extras.require("matplotlib", "me")
  assert not isinstance(e.value, extras.MissingExtra) and e.value.name == "kiwisolver"


def test_config_names_resolve_to_the_packaged_files(tmp_path, monkeypatch):
  names = configs.names()
  assert "demo" in names and "__init__" not in names
  assert names == sorted(f[:-3] for f in os.listdir(configs.CONFIG_DIR)
                         if f.endswith(".py") and f != "__init__.py")
  assert configs.resolve("demo:rope,tiny") == os.path.join(configs.CONFIG_DIR, "demo.py:rope,tiny")
  assert configs.resolve("chomsky") == os.path.join(configs.CONFIG_DIR, "chomsky.py")
  monkeypatch.chdir(tmp_path)
  (tmp_path / "demo").write_text("")  # a file of that name wins over the config name
  assert configs.resolve("demo:tiny") == "demo:tiny"
  with pytest.raises(ValueError) as e:
    configs.resolve("dmeo:tiny")
  assert str(e.value) == ("config file dmeo not found, and 'dmeo' is not a config name (in "
                          f"--config=dmeo:tiny); config names: {', '.join(names)}")


def test_the_checkouts_experiments_configs_is_the_packaged_directory():
  assert os.path.samefile(os.path.join(ROOT, "experiments", "configs"), configs.CONFIG_DIR)


def _readme_library_example() -> str:
  """The python block of the README's "Use in your own model" section."""
  readme = open(os.path.join(ROOT, "README.md")).read()
  section = re.search(r"^## Use in your own model\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
  assert section, "README.md has no '## Use in your own model' section"
  block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
  assert block, "the 'Use in your own model' section has no python block"
  return block.group(1)


def _link_distributions(names: set[str], directory: str) -> None:
  """Links the top-level packages, modules and metadata of these installed distributions
  into ``directory``."""
  for name in names:
    dist = importlib.metadata.distribution(name)
    for top in {str(f).split("/")[0] for f in dist.files or []} - {"..", "__pycache__"}:
      source, target = str(dist.locate_file(top)), os.path.join(directory, top)
      if os.path.lexists(source) and not os.path.lexists(target):
        os.symlink(source, target)


def _run(cmd, cwd, env, timeout=300):
  result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, f"{cmd}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
  return result


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
  """Builds the wheel, installs it into a fresh venv, and uses it from a directory outside
  the checkout: the README's library example without the train extra, the missing extra
  named, a packaged config by name through the console script, no ``experiments`` package.

  Offline and without downloads: the wheel is built from a copy of the build inputs with this
  venv's setuptools (``--no-build-isolation``, ``--no-index``) and installed with
  ``--no-deps``. The fresh venv sees this venv's packages through a ``.pth`` file naming a
  directory of symlinks to exactly the distributions the core install needs (their closure
  from the installed metadata, scripts/lock.py), plus pip; lengthgen's editable install is
  not among them, so the lengthgen it imports is the wheel's, and a core module importing an
  undeclared dependency fails. (``venv --system-site-packages`` would expose the base
  interpreter's site-packages, not this venv's.) What the train extra adds is linked into a
  second directory, on PYTHONPATH only for the console script's runs.
  """
  src, dist, env_dir = tmp_path / "src", tmp_path / "dist", tmp_path / "env"
  core, train, outside = tmp_path / "core", tmp_path / "train", tmp_path / "outside"
  for d in (src, core, train, outside):
    d.mkdir()
  for f in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, f), src / f)
  shutil.copytree(os.path.join(ROOT, "lengthgen"), src / "lengthgen",
                  ignore=shutil.ignore_patterns("__pycache__"))
  _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "--no-index", "-w", str(dist), str(src)], cwd=tmp_path, env=dict(os.environ))
  [wheel] = list(dist.glob("lengthgen-*.whl"))
  with zipfile.ZipFile(wheel) as z:
    files = z.namelist()
    entry_points = z.read(next(f for f in files if f.endswith("entry_points.txt"))).decode()
  assert {f.split("/")[0] for f in files if ".dist-info/" not in f} == {"lengthgen"}
  assert "lengthgen/configs/demo.py" in files
  assert "lengthgen-train = lengthgen.cli:main" in entry_points

  _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp_path,
       env=dict(os.environ))
  python = str(env_dir / "bin" / "python")
  purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                 cwd=outside, env=dict(os.environ)).stdout.strip()
  closure = load_file("scripts/lock.py").closure
  core_dists = {*closure(extras=()), "pip"}
  _link_distributions(core_dists, str(core))
  _link_distributions(set(closure(extras=("train",))) - core_dists, str(train))
  with open(os.path.join(purelib, "installed_packages.pth"), "w") as f:
    f.write(f"{core}\n")
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  env["JAX_PLATFORMS"] = "cpu"
  _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
       cwd=outside, env=env)

  # Core only: lengthgen is the wheel's, no experiments package, the library example runs.
  probe = _run([python, "-c", "import importlib.util, lengthgen; print(lengthgen.__file__); "
                "print(importlib.util.find_spec('experiments'))"], cwd=outside, env=env)
  where, experiments = probe.stdout.split()
  assert where.startswith(purelib), where
  assert experiments == "None", "an experiments package is importable"
  (outside / "example.py").write_text(_readme_library_example())
  _run([python, "example.py"], cwd=outside, env=env)
  missing = subprocess.run([python, "-c", "import lengthgen.plotting"], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=120)
  assert missing.returncode != 0
  assert ("lengthgen.plotting needs matplotlib, which is not installed; install it with pip "
          "install 'lengthgen[train]'") in missing.stderr, missing.stderr[-2000:]

  # With the train extra: a packaged config by name through the console script.
  env["PYTHONPATH"] = str(train)
  workdir = outside / "wd"
  _run([str(env_dir / "bin" / "lengthgen-train"), "--config=demo:tiny", f"--workdir={workdir}",
        "--config.train.steps=2", "--config.train.warmup_steps=1"], cwd=outside, env=env)
  assert (workdir / "results.json").exists() and (workdir / "config.json").exists()
  unknown = subprocess.run([str(env_dir / "bin" / "lengthgen-train"), "--config=dmeo",
                            f"--workdir={outside / 'wd2'}"], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=120)
  assert unknown.returncode != 0
  assert f"config names: {', '.join(configs.names())}" in unknown.stderr


def test_the_lock_pins_every_package_the_install_needs_at_its_installed_version():
  # make installs through requirements.lock, so in its venv this holds; elsewhere a failure
  # means the venv moved away from the lock (make lock rewrites it).
  lock = load_file("scripts/lock.py")
  with open(lock.LOCK) as f:
    pins = dict(line.strip().split("==") for line in f if "==" in line)
  assert lock.closure() == pins
  assert {"jax", "flax", "ml-collections", "matplotlib", "pytest", "setuptools"} <= set(pins)

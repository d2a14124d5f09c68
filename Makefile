# Two commands: `make demo` and `make test` (the unit and integration tiers; `make test-unit`
# and `make test-integration` run one). Each creates .venv (Python 3.12) when missing and
# installs lengthgen with every extra at the exact versions of requirements.lock.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# On the project's machines Python 3.12 comes from pyenv; elsewhere python3.12 is on PATH.
PYTHON312 := $(shell if command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -qx '3.12.1'; then echo 'env PYENV_VERSION=3.12.1 python3.12'; else echo python3.12; fi)
WORKDIR ?= workdirs/demo
PYTEST_ARGS ?=

.PHONY: demo test test-unit test-integration test-slow test-gpu install lock clean

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[all,dev,notebooks]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/lengthgen-train --config=demo --workdir=$(WORKDIR)
	@echo "Results: $(WORKDIR)/results.json and $(WORKDIR)/length_generalization.png"

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist worksteal $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist worksteal -m 'not slow and not gpu and not integration' $(PYTEST_ARGS)

test-integration: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist worksteal -m 'integration and not slow and not gpu' $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-gpu: $(VENV)/.installed
	$(PY) -m pytest -q -m gpu $(PYTEST_ARGS)

# requirements.lock from the versions now in .venv (every package the install above needs):
# run after upgrading packages there and passing `make test`.
lock: $(VENV)/.installed
	$(PY) scripts/lock.py

clean:
	rm -rf $(VENV) workdirs

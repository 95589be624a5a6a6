# commbench: `make run` runs the default sweep, `make test` runs the test suite.
# Both set themselves up on a fresh machine. The virtual environment sees the system
# site-packages, so a GPU machine keeps the CUDA torch it already has; only when no
# torch is importable at all do we install $(TORCH_SPEC) (a CPU build here).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPROC ?=
ARGS ?=

.PHONY: setup run test lint format gate benchmark clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/commbench sweep $(if $(NPROC),--nproc $(NPROC)) $(ARGS)

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

benchmark: setup
	$(PY) benchmarks/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

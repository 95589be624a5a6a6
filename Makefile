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

CI_CONFIG ?= configs/ci.toml
BASELINE ?= results/baselines/ci-gloo-4
CURRENT ?= results/ci-current
# Baseline runs in a history: README "Gate power" measured what each count buys here
# (10 is where more stop buying much).
BASELINE_RUNS ?= 10

# The oldest versions pyproject.toml declares (its `name>=X.Y` floors, read from it), in a
# venv of their own: what `make floor` tests the statistics and the gate with.
FLOOR_VENV ?= .venv-floor
FLOOR_PACKAGES := numpy scipy pandas pydantic typer rich
FLOOR_SPEC := $(foreach p,$(FLOOR_PACKAGES),$(shell sed -n 's/^ *"$(p)>=\([0-9.]*\)".*/$(p)==\1.*/p' pyproject.toml))
FLOOR_TESTS := tests/test_stats.py tests/test_gate.py

.PHONY: setup run test lint format gate baseline benchmark floor clean

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

# The CI sweep, gated against the committed baseline. Exit code: 0 pass, 1 regression,
# 2 bad input, 3 not comparable (e.g. another backend or world size than the baseline).
gate: setup
	rm -rf $(CURRENT)
	$(VENV)/bin/commbench sweep --nproc 4 --config $(CI_CONFIG) --out $(CURRENT) --label ci-current
	$(VENV)/bin/commbench gate $(BASELINE) $(CURRENT) \
		--markdown $(CURRENT)/gate.md --junit $(CURRENT)/gate.xml --json $(CURRENT)/gate.json

# Refresh the committed baseline: BASELINE_RUNS runs of the CI sweep, a history the gate
# judges against. rank_samples.csv is left out: the gate does not read it.
baseline: setup
	rm -rf $(BASELINE).new
	for i in $$(seq 1 $(BASELINE_RUNS)); do \
		$(VENV)/bin/commbench sweep --nproc 4 --config $(CI_CONFIG) \
			--out $(BASELINE).new/run-$$i --label baseline-$$i || exit $$?; \
		rm $(BASELINE).new/run-$$i/rank_samples.csv; \
	done
	rm -rf $(BASELINE) && mv $(BASELINE).new $(BASELINE)

# The statistics, the gate and compare under the dependency floor (built once, cached).
floor: $(FLOOR_VENV)/.installed
	$(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

$(FLOOR_VENV)/.installed: pyproject.toml
	rm -rf $(FLOOR_VENV)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q $(FLOOR_SPEC) "pytest>=8"
	touch $@

benchmark: setup
	$(PY) benchmarks/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) build *.egg-info .pytest_cache .ruff_cache

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

# The venvs and libraries CI's heavier checks need live here, outside the clone, so a CI
# machine downloads them once.
CI_CACHE ?= $(HOME)/.cache/commbench-ci

CI_CONFIG ?= configs/ci.toml
BASELINE ?= results/baselines/ci-gloo-4
CURRENT ?= results/ci-current
# `make gate`'s second sweep, made only to confirm an exit 1 (beside CURRENT).
CONFIRM ?= $(CURRENT)-confirm
# The rolling history `make gate` judges against and, with RECORD=1, grows (docs/ci.md);
# empty: the committed BASELINE. GATE_FLAGS: more `commbench gate` flags (--detect ...,
# --allow-young on main so that a young history grows).
HISTORY ?=
RECORD ?=
GATE_FLAGS ?=
GATE_AGAINST = $(if $(HISTORY),$(HISTORY),$(BASELINE))
GATE_RECORD = $(if $(and $(HISTORY),$(RECORD)),--record $(HISTORY))
BASELINE_GAP ?= 0
# Baseline runs in a history: docs/benchmarks.md, "Gate power", measured what each count buys here
# (10 is where more stop buying much).
BASELINE_RUNS ?= 10

# The oldest supported torch is pyproject's floor; the newest, the newest release tested.
TORCH_OLDEST ?= $(shell sed -n 's/^ *"torch>=\([0-9.]*\)".*/\1/p' pyproject.toml)
TORCH_NEWEST ?= 2.15.0


# The oldest versions pyproject.toml declares (its `name>=X.Y` floors, read from it), in a
# venv of their own: what `make floor` tests the statistics and the gate with.
FLOOR_VENV ?= $(CI_CACHE)/venv-floor
FLOOR_PACKAGES := numpy scipy pandas pydantic typer rich
FLOOR_SPEC := $(foreach p,$(FLOOR_PACKAGES),$(shell sed -n 's/^ *"$(p)>=\([0-9.]*\)".*/$(p)==\1.*/p' pyproject.toml))
# The test modules marked `floor` (pytestmark): the others import torch, which the floor
# venv does not have.
FLOOR_TESTS = $(shell grep -rl "^pytestmark = pytest.mark.floor" tests)

.PHONY: setup run test test-cuda-build cuda-venv test-torch-range gpu-check lint format docs gate baseline benchmark floor clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/commbench sweep $(if $(NPROC),--nproc $(NPROC)) $(ARGS)

# One pytest worker per CPU (pytest-xdist); tests/conftest.py groups the tests that share a
# run or a world, so each is made once. The real-NCCL tests need the CUDA build of torch and
# downloaded libnccl builds: they run in `make test-cuda-build`, not here.
PYTEST_WORKERS ?= auto
PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup

test: setup
	$(PY) -m pytest -q $(PARALLEL) -m "not real_nccl" tests

# The whole suite under the registry's CUDA build of torch (imports on a machine without a
# GPU), plus the tests that preload real libnccl builds from nvidia-nccl-cu13 wheels: older
# than, equal to and newer than the NCCL torch was built with. The venv and the libraries
# live in CI_CACHE, outside the clone, so a CI machine downloads them once.
REGISTRY_PIP ?= pip install -q --isolated --cert /etc/ssl/certs/ca-certificates.crt
CUDA_TORCH_SPEC ?= torch==2.13.0
CUDA_VENV ?= $(CI_CACHE)/venv-cu130
CUDA_PY := $(CUDA_VENV)/bin/python
NCCL_DIR ?= $(CI_CACHE)/nccl-cu13
NCCL_VERSIONS ?= 2.28.9 2.29.7 2.32.3
NCCL_LIBS := $(foreach v,$(NCCL_VERSIONS),$(NCCL_DIR)/$(v)/libnccl.so.2)

# Installed again only when the torch spec or pyproject.toml changes (the stamp's name).
CUDA_STAMP := $(CUDA_VENV)/.installed-$(shell echo "$(CUDA_TORCH_SPEC)" | cat - pyproject.toml \
	| sha1sum | cut -c1-12)

$(CUDA_PY):
	$(PYTHON) -m venv $(CUDA_VENV)

cuda-venv: $(CUDA_STAMP)

$(CUDA_STAMP): | $(CUDA_PY)
	$(CUDA_PY) -m $(REGISTRY_PIP) "$(CUDA_TORCH_SPEC)" -e ".[dev]"
	$(CUDA_PY) -c "import torch; assert torch.version.cuda, torch.__version__"
	rm -f $(CUDA_VENV)/.installed-* && touch $@

# One wheel at a time: download, keep only the library, drop the wheel (pip caches it).
$(NCCL_DIR)/%/libnccl.so.2: | $(CUDA_PY)
	rm -rf $(NCCL_DIR)/$*.part && mkdir -p $(NCCL_DIR)/$*.part
	$(CUDA_PY) -m $(subst install,download,$(REGISTRY_PIP)) --no-deps --only-binary=:all: \
		"nvidia-nccl-cu13==$*" -d $(NCCL_DIR)/$*.part
	cd $(NCCL_DIR)/$*.part && $(CUDA_PY) -m zipfile -e *.whl .
	mkdir -p $(NCCL_DIR)/$*
	mv $(NCCL_DIR)/$*.part/nvidia/nccl/lib/libnccl.so.2 $@
	rm -rf $(NCCL_DIR)/$*.part

# PYTHONPATH: this clone's commbench, whichever clone last installed into the shared venv.
test-cuda-build: cuda-venv $(NCCL_LIBS)
	PYTHONPATH=$(CURDIR) COMMBENCH_TEST_NCCL_DIR=$(NCCL_DIR) $(CUDA_PY) -m pytest -q $(PARALLEL) tests

# A short gloo sweep under the oldest and the newest supported torch, each in its own venv
# cached in ~/.cache/commbench-ci (the registry's builds: several GB each, the first time).
test-torch-range:
	scripts/torch-range.sh $(TORCH_OLDEST) $(TORCH_NEWEST)

# On a GPU machine, first: checks what only a GPU shows, in under 8 minutes (docs/gpu.md).
# No venv, no network: the python and torch already there, this repo on PYTHONPATH.
# NCCL_LIB=/path/libnccl.so.2 (a second NCCL, from an nvidia-nccl wheel) checks --nccl-lib
# with it (else with a copy of the bound one); KEEP=DIR keeps every run and rank log there.
NCCL_LIB ?=
KEEP ?=
gpu-check:
	PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" PYTHONUNBUFFERED=1 $(PYTHON) \
		-m commbench.gpucheck $(if $(NCCL_LIB),--nccl-lib $(NCCL_LIB)) $(if $(KEEP),--keep $(KEEP))

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The documentation site (mkdocs.yml), strictly: a broken link, anchor or nav entry fails.
docs: setup
	$(VENV)/bin/mkdocs build --strict --site-dir site

# The CI sweep, gated (docs/ci.md). Against a rolling HISTORY when one is given (CI keeps
# it as a cache on main and gates pull requests against it; an empty one is seeded with
# the committed BASELINE's runs, which are pinned as the reference every gate also judges
# the cumulative shift against), else against BASELINE. RECORD=1 adds the clean runs to
# HISTORY. An exit 1 is confirmed once before it is believed: after CONFIRM_DELAY
# seconds (a later slot shares less of the alarm's drift) the sweep is made again into
# CONFIRM and judged on its own (--current-runs 2 --confirm), whose verdict is the job's:
# a clean run that drifted rarely drifts twice (both are then quarantined in HISTORY,
# never judged against), a real regression shows in both. The reports of the verdict
# that counts are in CURRENT.
# Exit codes: 0 pass, 1 regression (confirmed), 2 bad input, 3 not comparable, 4 cannot
# see the asked shift, 70 a bug in commbench.
CONFIRM_DELAY ?= 0
CI_SWEEP = $(VENV)/bin/commbench sweep --nproc 4 --config $(CI_CONFIG)
GATE_REPORTS = --markdown $(CURRENT)/gate.md --junit $(CURRENT)/gate.xml --json $(CURRENT)/gate.json
gate: setup
	@if [ -n "$(HISTORY)" ] && [ -z "$$(ls -A $(HISTORY) 2>/dev/null)" ]; then \
		for run in $(BASELINE)/*/; do \
			$(VENV)/bin/commbench history add $(HISTORY) $$run || exit $$?; \
		done; \
	fi; \
	if [ -n "$(HISTORY)" ]; then \
		$(VENV)/bin/commbench history pin $(HISTORY) $(BASELINE)/*/ --if-unpinned \
			--reason "the committed baseline $(BASELINE)" || exit $$?; \
	fi
	@rm -rf $(CURRENT) $(CONFIRM); \
	$(CI_SWEEP) --out $(CURRENT) --label ci-current || exit $$?; \
	$(VENV)/bin/commbench gate $(GATE_AGAINST) $(CURRENT) $(GATE_FLAGS) $(GATE_RECORD) \
		$(GATE_REPORTS); \
	code=$$?; \
	if [ $$code -ne 1 ]; then exit $$code; fi; \
	echo "gate: exit 1; sweeping again once: the alarm counts only when the rerun repeats it"; \
	sleep $(CONFIRM_DELAY); \
	$(CI_SWEEP) --out $(CONFIRM) --label ci-confirm || exit $$?; \
	$(VENV)/bin/commbench gate $(GATE_AGAINST) $(CURRENT) $(CONFIRM) --current-runs 2 --confirm \
		$(GATE_FLAGS) $(GATE_RECORD) $(GATE_REPORTS)

# Refresh the committed baseline, the seed of every rolling history: BASELINE_RUNS runs of
# the CI sweep, BASELINE_GAP seconds apart (runs made back to back understate the drift
# between hours and days: the gate says so). rank_samples.csv is left out: the gate does
# not read it.
baseline: setup
	rm -rf $(BASELINE).new
	for i in $$(seq 1 $(BASELINE_RUNS)); do \
		$(VENV)/bin/commbench sweep --nproc 4 --config $(CI_CONFIG) \
			--out $(BASELINE).new/run-$$i --label baseline-$$i || exit $$?; \
		rm $(BASELINE).new/run-$$i/rank_samples.csv; \
		[ $$i -eq $(BASELINE_RUNS) ] || sleep $(BASELINE_GAP); \
	done
	rm -rf $(BASELINE) && mv $(BASELINE).new $(BASELINE)

# The statistics, the gate and compare under the dependency floor (built once, cached).
# Installed again only when the floors change (the stamp's name).
FLOOR_STAMP := $(FLOOR_VENV)/.installed-$(shell echo "$(FLOOR_SPEC)" | sha1sum | cut -c1-12)

floor: $(FLOOR_STAMP)
	$(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider -m floor $(FLOOR_TESTS)

$(FLOOR_STAMP):
	rm -rf $(FLOOR_VENV)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install -q $(FLOOR_SPEC) "pytest>=8"
	touch $@

benchmark: setup
	$(PY) benchmarks/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .ruff_cache

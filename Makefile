# Every target creates .venv when missing and installs what it needs (idempotent).
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
export OMP_NUM_THREADS ?= 2
export GOMP_SPINCOUNT ?= 100000

.PHONY: demo test lint bench install clean gpu-check system-packages

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# A fixed amount of work (4 epochs): the same table on a fast, slow or busy machine; only the time changes.
demo: $(STAMP)
	@echo "make demo: solve 120 NS2D trajectories (under a minute on 2 cores), then train an FNO for 4 epochs"
	@echo "           (about 5 min on 2 cores; the trainer prints its own estimate after its first steps)"
	$(BIN)/surrogate generate ns2d --out data/ns2d_demo.h5 --n-trajectories 120 --n-steps 40 --dt 0.25 --burn-in 0
	$(BIN)/surrogate info data/ns2d_demo.h5
	$(BIN)/surrogate train examples/ns2d_fno.yaml

# ruff (lint and format) over the tree, mypy over the core types, tasks, training and datasets
# (configured in pyproject.toml). `make test` runs it first, so CI keeps it.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# System packages first (.ci/system-packages: installs them as root with apt-get, else says
# which are missing and what that skips), then lint, then the suite.
test: system-packages lint
	$(BIN)/python -m pytest -q --durations=15

SYSTEM_PACKAGES := libzmq3-dev openfoam openfoam-examples paraview xvfb
system-packages:
	@bash .ci/system-packages $(SYSTEM_PACKAGES)

# The prepared GPU check (benchmarks/gpu_check.py, <= 8 minutes on one H100-class GPU): kernel
# tests on the device, kernel benchmarks against their peers and torch.compile, training steps,
# channel surrogate vs LES; JSON into benchmarks/results/gpu/. Without CUDA it says so, exits 0.
gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check

bench: $(STAMP)
	$(BIN)/python -m benchmarks.train_step
	$(BIN)/python -m benchmarks.loader
	$(BIN)/python -m benchmarks.solver_scaling

clean:
	rm -rf $(VENV) runs data

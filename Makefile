# Two entry points for a fresh machine: `make run` (the dashboard) and `make test` (the whole suite).
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint format bench clean-venv

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch/torchvision pinned to the builds that torchvision is compatible with on these machines.
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[server,dev,export,executorch]'
	touch $(STAMP)

# The dashboard on the embedded default (SQLite + file broker + one worker); it prints its address.
run: $(STAMP)
	$(BIN)/lowdino serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lowdino server worker
	# One OpenMP thread per process: the suite runs several processes at once (server, worker, trainer, DDP
	# ranks) on small tensors, where extra threads only wait on busy cores. Two pytest workers, whole files
	# each (module fixtures stay shared), handed out in the order tests/conftest.py sets (longest file first;
	# without --no-loadscope-reorder xdist would reorder the files by their number of tests).
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The edit loop: unit tests only (no browser, no end-to-end stack, nothing marked slow or needing services).
test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 -m "not slow and not services and not gpu" --ignore=tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy lowdino server worker

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean-venv:
	rm -rf $(VENV)

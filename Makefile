# The README's commands. Each target installs what it needs (idempotently) first.
SHELL := /bin/bash

export MUSIC_ASSETS_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(MUSIC_ASSETS_DATA_DIR)/dagster_home
# One BLAS/OpenMP thread per process: the multiprocess executor and the
# rendering/analysis pools already use every core.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 3000
PYTEST_ARGS ?=

.PHONY: run test lint format dev bench setup setup-test demo-inputs clean-data

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

## Materialize the whole default asset graph at demo scale on the embedded SQLite instance.
run: setup
	@$(PY) -m music_assets.ops.demo

## Lint, then run the test suite.
test: setup-test lint
	@$(PY) -m pytest $(PYTEST_ARGS)

## ruff: lint and formatting, the whole tree (configured in pyproject.toml).
lint: setup-test
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .

## Apply ruff's fixes and formatting.
format: setup-test
	@.venv/bin/ruff check --fix .
	@.venv/bin/ruff format .

## Open the Dagster UI on http://$(HOST):$(PORT), after printing which sensors and schedules are on.
dev: setup
	@$(PY) -m music_assets.ops.instance
	@$(PY) -m music_assets.ops.automations http://$(HOST):$(PORT)
	env --default-signal=INT,TERM .venv/bin/dagster dev -m music_assets.definitions -h $(HOST) -p $(PORT)

## Run every benchmark in bench/ (each prints its figures and ratios).
bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## Regenerate the checked-in demo recordings under data/raw_audio/.
demo-inputs: setup
	@$(PY) scripts/make_demo_audio.py

## Delete every generated artifact (keeps the checked-in inputs).
clean-data:
	git clean -fdX -- data/

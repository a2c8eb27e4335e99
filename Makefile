# Everything runs from a project-local virtual environment built from the committed lock file
# (uv.lock). A fresh machine needs only Python 3.11, make and git: uv itself is bootstrapped
# into .uv/ from the package registry with pip.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .uv/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install demo test test-all lint bench bench-runtime bench-pipeline bench-faults dev clean-data

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --quiet
	touch $@

install: $(VENV)/.synced

## demo: a simulated trading session into bronze, then the whole pipeline, then the gold tables
demo: install
	$(VENV)/bin/risk-lake demo

## test: the test suite (what CI runs)
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

## test-all: the suite including the long fault-injection and scale variants
test-all: install
	$(VENV)/bin/pytest -m ''

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: bench-runtime bench-pipeline bench-faults

bench-runtime: install
	$(VENV)/bin/python -m bench.runtime

bench-pipeline: install
	$(VENV)/bin/python -m bench.pipeline

bench-faults: install
	$(VENV)/bin/python -m bench.faults

## dev: the Dagster UI on http://127.0.0.1:3000 with the full lineage
dev: install
	$(VENV)/bin/dg dev --host 127.0.0.1 --port 3000

clean-data:
	rm -rf data/lake data/spool

# Triton: `make run` starts the whole system, `make test` runs the suite on real services.
SHELL := /bin/bash
VENV := .venv
UV := .tools/bin/uv
UV_VERSION := 0.9.30
PYTHON_FOR_UV := $(shell command -v python3.11 || command -v python3)
export UV_PYTHON := $(PYTHON_FOR_UV)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
PYTEST_ARGS ?=

.PHONY: install run test test-e2e soak bench lint format migrate services clean help

help:
	@echo "make run     start Triton on 127.0.0.1:\$$PORT (default 8000) with embedded services"
	@echo "make test    run the test suite against real MariaDB and Redis (starts them)"
	@echo "make soak    slow soak and fault suites"
	@echo "make bench   benchmarks (< 10 min); numbers go to loadtests/results/latest.{json,md}"
	@echo "make lint    ruff"

$(UV):
	@echo ">> bootstrapping uv $(UV_VERSION) in .tools/"
	$(PYTHON_FOR_UV) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@echo ">> installing locked dependencies into $(VENV)"
	$(UV) sync --frozen
	@touch $@

install: $(VENV)/.synced

run: install
	@scripts/run.sh

services:
	@scripts/ensure-services.sh

test: install services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

soak: install services
	$(VENV)/bin/pytest -m soak -p no:cacheprovider $(PYTEST_ARGS)

# Starts what it needs itself (scripts/run.sh with embedded services, the bare server).
bench: install
	timeout 900 $(VENV)/bin/python -m loadtests.bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(VENV)/bin/python manage.py migrate

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache

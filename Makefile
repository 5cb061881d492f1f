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

.PHONY: install run cluster test test-e2e soak bench lint format migrate services clean help audit loadtest loadtest-seed

help:
	@echo "make run     start Triton on 127.0.0.1:\$$PORT (default 8000) with embedded services, supervised (Ctrl-C stops all)"
	@echo "make cluster nginx with HTTPS on 127.0.0.1:\$$PORT (HTTP on PORT+1 redirects) over two server processes, worker, beat"
	@echo "make test    run the test suite against real MariaDB and Redis (starts them)"
	@echo "make soak    slow soak and fault suites"
	@echo "make bench   benchmarks (< 10 min); numbers go to loadtests/results/latest.{json,md}"
	@echo "make loadtest HOST=http://127.0.0.1:8000 USERS=50 TIME=60s   headless locust run;"
	@echo "             CSV and HTML report in loadtests/results/ (loadtests/README.md)"
	@echo "make lint    ruff, the import rules (import-linter) and the type checker (mypy)"
	@echo "make audit   locked dependencies against vulnerability advisories (audit-allowlist.toml)"

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

cluster: install
	@$(VENV)/bin/python scripts/cluster.py

services:
	@scripts/ensure-services.sh
	@scripts/ensure-browser.sh

test: install services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

soak: install services
	$(VENV)/bin/pytest -m soak -p no:cacheprovider $(PYTEST_ARGS)

# Starts what it needs itself (scripts/run.sh with embedded services, the bare server).
bench: install
	timeout 900 $(VENV)/bin/python -m loadtests.bench $(BENCH_ARGS)

# Skips, saying so, where no advisory service is reachable (AUDIT_REQUIRED=1: fail instead).
audit: install
	$(VENV)/bin/python scripts/audit.py

# Load tests (loadtests/README.md). Seed the target first: make loadtest-seed (same
# DATABASE_URL as the server) writes loadtests/results/tokens.json, which the run then uses.
HOST ?= http://127.0.0.1:8000
USERS ?= 50
SPAWN_RATE ?= 5
TIME ?= 60s
SEED_USERS ?= 200
TOKENS ?= loadtests/results/tokens.json
LOADTEST_RESULTS := loadtests/results

loadtest-seed: install
	$(VENV)/bin/python manage.py seed_loadtest --users $(SEED_USERS) --tokens-out $(TOKENS)

loadtest: install
	@mkdir -p $(LOADTEST_RESULTS)
	$(VENV)/bin/locust -f loadtests/locustfile.py --host $(HOST) --headless \
		--users $(USERS) --spawn-rate $(SPAWN_RATE) --run-time $(TIME) \
		$(if $(wildcard $(TOKENS)),--triton-tokens $(TOKENS),) \
		--csv $(LOADTEST_RESULTS)/locust --html $(LOADTEST_RESULTS)/report.html --only-summary

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	# mypy's Django plugin imports the settings, which need a key (any will do for reading types).
	DJANGO_SECRET_KEY=type-checking-only $(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: install
	$(VENV)/bin/python manage.py migrate

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache

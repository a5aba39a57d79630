# tsgate — every target sets itself up: a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
# the test workers (xdist, one test file per worker at a time); the suite runs under load on each
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install tsgate with every extra and the dev tools

services: ## Start PostgreSQL, Redis and RabbitMQ where they are installed but down
	@bash scripts/services.sh

browser: ## Install headless Chromium for the chart-page tests (as root, when missing)
	@bash scripts/browser.sh

promtool: ## Install promtool for the Prometheus API tests (as root, when missing)
	@bash scripts/prometheus.sh

nginx: ## Install nginx for the benchmarks' proxy_cache baseline (as root, when missing)
	@bash scripts/nginx.sh

wrk: ## Install wrk, the load generator of the benchmarks' load scenarios (as root, when missing)
	@bash scripts/wrk.sh

jstools: ## Install the chart page's JavaScript tools (ESLint; pinned in package-lock.json)
	@bash scripts/jstools.sh

demo: $(STAMP) ## Serve tsgate on the embedded defaults with the simulated ACE campus
	$(VENV)/bin/tsgate serve --demo --port $(PORT)

test: $(STAMP) services browser promtool wrk jstools ## Every test, under branch coverage, then the report (fails when no test ran)
	node --test tests/js/*.test.js
	$(PY) -m coverage erase
	$(PY) -m coverage run -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not alone"
	$(PY) -m coverage run -m pytest -q -m alone
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

test-fast: $(STAMP) services jstools ## The tests not marked slow, on two workers: the edit-test loop
	node --test tests/js/*.test.js
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

lint: $(STAMP) jstools ## ruff (lint + format check), the import contracts, vulture and ESLint
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture
	node_modules/.bin/eslint

types: $(STAMP) ## mypy --strict on src/ and benchmarks/
	$(VENV)/bin/mypy

check: lint types test ## What CI runs: lint, types, and every test with branch coverage

bench: $(STAMP) nginx wrk ## Benchmarks against the simulator; writes docs/benchmarks.md
	$(PY) -m benchmarks

fmt: $(STAMP) ## Format and autofix
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean: ## Remove the venv, caches and the embedded data folder
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache .coverage

.PHONY: help venv services browser promtool nginx wrk jstools demo test test-fast lint types check bench fmt clean

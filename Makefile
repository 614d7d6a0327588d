# Switchboard developer entry points; `make` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Third-party MCP peers the tests drive (TypeScript SDK, server-everything, the conformance suite,
# Node 22 for it), pinned in tests/node/package-lock.json.
PEERS := tests/node
PEERS_STAMP := $(PEERS)/node_modules/.installed
# Each xdist worker gets its own database, namespace and (for e2e) stack; loadfile keeps a
# module's tests on one worker so a session stack is booted once per module group.
XDIST ?= -n 2 --dist loadfile
PYTEST := $(PY) -m pytest
# pytest exits 5 when a folder holds no tests yet; that is not a failure.
NO_TESTS_OK := || { rc=$$?; [ $$rc -eq 5 ] || exit $$rc; }
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help runtime setup test-peers run stop test test-unit test-integration test-e2e test-acceptance test-conformance test-fuzz lint fmt bench k8s-check clean

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
		echo "Installing python3-venv"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; \
	fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

runtime: $(STAMP) ## Create .venv, install the Python deps and missing system packages (what make run needs)
	@$(PY) -m libs.devstack setup

setup: runtime test-peers ## Everything to develop and test: runtime, plus the npm test peers with Node 22, poppler and chromium
	@$(PY) -m libs.devstack test-tools

$(PEERS_STAMP): $(PEERS)/package.json $(PEERS)/package-lock.json | $(STAMP)
	@$(PY) -m libs.devstack peers $(PEERS)
	@touch $@

test-peers: $(PEERS_STAMP) ## Install the npm test peers (TypeScript SDK, conformance suite, Node 22)

run: runtime ## Start Postgres, NATS, the five services and nginx on http://127.0.0.1:8080 (SWITCHBOARD_PORT)
	$(PY) -m libs.devstack run

stop: ## Stop the stack started by `make run`
	@if [ -x $(PY) ]; then $(PY) -m libs.devstack stop; else echo "not running"; fi

test: setup lint ## Lint, then run every test (unit, integration, e2e, acceptance, conformance)
	$(PYTEST) $(XDIST) tests $(NO_TESTS_OK)

test-unit: runtime ## Run the unit tests
	$(PYTEST) tests/unit $(NO_TESTS_OK)

test-integration: setup ## Run the integration tests (real Postgres and NATS)
	$(PYTEST) $(XDIST) tests/integration $(NO_TESTS_OK)

test-e2e: setup ## Run the end-to-end tests (the whole stack behind nginx)
	$(PYTEST) tests/e2e $(NO_TESTS_OK)

test-acceptance: setup ## Run the acceptance suite (the stack as `make run` starts it, from a 0700 copy)
	$(PYTEST) tests/acceptance

test-fuzz: setup ## Fuzz every service's OpenAPI document through nginx (schemathesis): no 5xx
	$(PYTEST) tests/fuzz $(NO_TESTS_OK)

test-conformance: setup ## Run the official MCP conformance suites, directly and through the gateway
	$(PYTEST) tests/conformance $(NO_TESTS_OK)

lint: runtime ## Check lint, formatting and the project's import rules (changes nothing)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m libs.devstack.lint

fmt: runtime ## Format the code and apply safe lint fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: runtime ## Benchmark the whole stack as make run starts it (BENCH_MODE=trimmed: the gateway alone)
	@if [ -d benchmarks ]; then $(PY) -m benchmarks; else echo "No benchmarks yet."; fi

k8s-check: runtime ## Validate deploy/k8s (kubectl kustomize | kubernetes-validate --strict), hadolint the Dockerfiles, promtool the alert rules
	$(PY) -m libs.devstack.k8s_check

clean: stop ## Remove .run (logs, private Postgres/NATS data, nginx prefix, sandbox work) and caches; keeps .venv
	@if [ -x $(PY) ]; then rm -rf "$$($(PY) -c 'from services.sandbox.layout import relocated_root; print(relocated_root())')"; fi
	rm -rf .run .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
# Every target does its own set-up, so both work on a fresh Debian machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo demo-library test setup system-deps lint typecheck generate check-generated control-plane bench clean

# The whole product on a local control plane; prints the TaskStores and the injected env.
demo: setup
	$(PY) -m taskstore_dev.demo $(DEMO_ARGS)

# The library alone: the documented usage flow against the backend the TA_* variables select.
demo-library: setup
	$(PY) -m teal_taskstore demo

# pytest's chain test builds .venvs/py3.12 (a row of scripts/test-pythons) when it is
# missing; scripts/test-pythons then reuses it.
test: setup control-plane lint typecheck check-generated
	$(PY) -m pytest
	$(PY) scripts/test-pythons

# Every generated file from its one source: the CRD copies (the models), the chart's RBAC
# rules and the docs' RBAC table (the table of kinds), the plain manifests (the chart).
generate: setup control-plane
	$(PY) -m taskstore_dev.generate

# Fails naming each generated file that differs from what `make generate` would write.
check-generated: setup control-plane
	$(PY) -m taskstore_dev.generate --check

setup: system-deps $(STAMP)

# redis-server (and redis-sentinel, redis-cli for the HA tier) for the real-Redis tests,
# openssl for the control plane's certificates.
system-deps:
	@scripts/install-system-deps

# Three distributions, editable: the library (.), the operator (operator/) and the
# development tooling (tools/: control plane, demo, generators), plus the dev tools.
$(STAMP): pyproject.toml operator/pyproject.toml tools/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e ./operator -e ./tools
	touch $(STAMP)

control-plane: setup
	$(PY) scripts/control-plane build

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy

bench: setup
	$(PY) scripts/bench_library.py
	$(PY) scripts/bench_ha.py

clean:
	rm -rf $(VENV) .venvs .pytest_cache .mypy_cache .ruff_cache

# Floe's developer entry points. A fresh machine needs only `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
AF_VENV := .venv-airflow
AZURITE := .tools/node_modules/.bin/azurite
FLOE_HOME ?= .floe
PORT ?= 8080

.PHONY: install install-dev run test test-airflow lint format java azurite clean

## install: build .venv with Floe and its runtime dependencies (quick when nothing changed)
install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-runner.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-runner.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

## install-dev: add the test and lint dependencies
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@touch $@

## azurite: the Azure Storage emulator the tests start, pinned in .tools/package-lock.json
azurite: $(AZURITE)

$(AZURITE): .tools/package.json .tools/package-lock.json
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## java: pyspark needs Java 17 or newer; installs openjdk-17-jre-headless with apt-get when missing
java:
	@sh .ci/ensure-java

## run: install, then serve the Jobs API on http://127.0.0.1:$(PORT) with the example jobs deployed
run: install
	FLOE_WORKSPACE=$${FLOE_WORKSPACE:-$(CURDIR)/examples/workspace} $(BIN)/floe serve --home $(FLOE_HOME) --port $(PORT) --deploy examples/jobs

## test: install the test dependencies and services, then run the whole suite (Airflow's tests included)
test: install-dev azurite java $(AF_VENV)/.installed
	$(BIN)/python -m pytest
	REQUIRE_AIRFLOW_PROVIDER=1 $(AF_VENV)/bin/python -m pytest tests/airflow -p no:cacheprovider --confcutdir=tests/airflow

## test-airflow: Airflow's Databricks provider against a real Floe server, from its own venv (.venv-airflow:
## Airflow pins versions Floe cannot share)
test-airflow: install $(AF_VENV)/.installed
	REQUIRE_AIRFLOW_PROVIDER=1 $(AF_VENV)/bin/python -m pytest tests/airflow -p no:cacheprovider --confcutdir=tests/airflow

$(AF_VENV)/.installed: requirements-airflow.txt
	@test -x $(AF_VENV)/bin/python || $(PYTHON) -m venv $(AF_VENV)
	$(AF_VENV)/bin/python -m pip install -q --upgrade pip
	$(AF_VENV)/bin/python -m pip install -q -r requirements-airflow.txt
	@touch $@

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(AF_VENV) .tools/node_modules .pytest_cache

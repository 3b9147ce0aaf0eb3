# Every target builds the virtual environment first when it is missing or stale.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda runs python3.12; pyenv machines need both runtimes visible for `sam build`.
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.1[23]\.' | sort -V | tr '\n' ':' | sed 's/:$$//')
PYTHON ?= $(shell for p in python3.12 python3.13; do $$p -c 'import sys' >/dev/null 2>&1 && command -v $$p && break; done)
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

.PHONY: test lint typecheck unit sam run bench clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.12 or python3.13 is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: lint typecheck sam unit

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest

sam: $(BIN)/.installed
	@echo "sam validate/build: see infra (added with the template)"

run: $(BIN)/.installed
	$(BIN)/python -m infra.local

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

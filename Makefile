# Every target builds the virtual environment first when it is missing or stale.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda runs python3.12; pyenv machines need both runtimes visible for `sam build`.
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.1[23]\.' | sort -V | tr '\n' ':' | sed 's/:$$//')
PYTHON ?= $(shell for p in python3.12 python3.13; do PYENV_VERSION=$(PYENV_VERSION) $$p -c 'import sys; print(sys.executable)' 2>/dev/null && break; done)
export AWS_ACCOUNT_ID_ENDPOINT_MODE := disabled

# Template checks (checkov) live in a virtualenv of their own: their pinned dependencies never
# touch the project's. Both are bounded in time so a hung tool cannot eat CI's budget.
TOOLS_VENV ?= .venv-tools
TOOLS_BIN := $(TOOLS_VENV)/bin
CHECK_TIMEOUT ?= 300

.PHONY: test lint typecheck checkov unit build run bench fuzz clean

# Two jobs at a time: the two virtualenvs install side by side, then lint, mypy, checkov and the
# build, and the tests start once the build they check is made (from a fresh clone, the steps
# before pytest took 84 s one by one, 57 s so). `make test JOBS=1` runs them one by one.
JOBS ?= 2
MAKEFLAGS += --jobs=$(JOBS)

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.12 or python3.13 is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(TOOLS_BIN)/.installed: requirements-tools.txt
	@test -n "$(PYTHON)" || { echo "python3.12 or python3.13 is required"; exit 1; }
	test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_BIN)/pip install --quiet --upgrade pip
	$(TOOLS_BIN)/pip install --quiet -r requirements-tools.txt
	touch $@

test: lint typecheck checkov build unit

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist): each worker starts its own local stacks and browser.
# A file runs whole on one worker (--dist loadfile), so a module's fixture (a stack, a bench run)
# is built once, not once per worker; the files of the `long` tests are handed out first (in the
# collection's order, which tests/conftest.py sets: xdist would otherwise put the biggest files first).
TEST_WORKERS ?= auto
unit: $(BIN)/.installed build
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Every check that does not fit is skipped in its resource's Metadata (checkov: skip:) with the
# reason; --skip-download keeps checkov off the network (no Prisma Cloud guidelines).
checkov: $(TOOLS_BIN)/.installed
	timeout $(CHECK_TIMEOUT) $(TOOLS_BIN)/checkov -f template.yaml --framework cloudformation \
		--compact --quiet --skip-download

# The console's browser tests (tests/console) need a Chromium (tests/console/browser.py says which:
# CHROMIUM=/path, Debian's package, or Playwright's own download) and axe-core from npm, pinned by
# package-lock.json and installed into node_modules/ (test-only: the console itself loads no package).
# Playwright's download cannot reach its host here, so as root with apt, Debian's package is installed
# when no Chromium is found; otherwise the check says how to get one.
export CHROMIUM
unit: chromium node_modules/.installed
.PHONY: chromium
chromium: $(BIN)/.installed
	@if [ -z "$(CHROMIUM)" ] && ! $(BIN)/python -m tests.console.browser >/dev/null 2>&1 \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi
	@$(BIN)/python -m tests.console.browser
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# Screenshots of the console for README.md and docs/ (a stack of its own with the demo seed).
.PHONY: screenshots
screenshots: $(BIN)/.installed chromium node_modules/.installed
	$(BIN)/python -m tests.console.screens docs/console

# SAM reads samconfig.toml too; --cached reuses the layer's pip install until requirements.txt changes.
# sam build ships sources only, and Lambda's code folders are read-only: Python would compile every
# module it imports on every cold start. So the build gets bytecode, hash-checked (zip files keep
# mtimes to 2 s only), made by this venv's Python 3.12, the functions' runtime (docs/performance.md).
SAM := SAM_CLI_TELEMETRY=0 $(BIN)/sam
build: $(BIN)/.installed
	SAM_CLI_TELEMETRY=0 timeout $(CHECK_TIMEOUT) $(BIN)/sam validate --lint
	$(SAM) build --cached --parallel
	$(BIN)/python -m compileall -q -j0 --invalidation-mode checked-hash .aws-sam/build

run: $(BIN)/.installed
	$(BIN)/python -m infra.local

bench: build
	$(BIN)/python -m bench

# schemathesis with a fresh seed and more examples than `make test`'s bounded pass.
fuzz: $(BIN)/.installed
	FUZZ_SEED=random FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_schemathesis.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache

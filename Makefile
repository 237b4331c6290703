# Two commands on a fresh clone: `make serve` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

# The locking tool, pinned so that two people regenerating the lock get the same resolver.
UV_VERSION := 0.13.9
# Extra options for `make lock`: `--upgrade` moves every pin to its newest allowed release,
# `--upgrade-package NAME` moves one; without them the pins already in the lock are kept.
LOCK_FLAGS ?=

.PHONY: setup node chromium lock serve test lint typecheck unit fuzz clean

setup: $(VENV)/.installed node chromium tests/js/node_modules/.package-lock.json

# Node.js runs the Auth0 Action's tests (tests/identity). Installed from Debian's packages
# where it is missing and we may (root); elsewhere those tests skip and say why (CI fails).
node:
	@command -v node >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs; \
		else \
			echo "node is missing: the Auth0 Action's tests will be skipped (install nodejs)"; \
		fi; }

# Debian's chromium, in which tests/widgets renders Stigg's React widgets (Playwright drives
# it; no browser is ever downloaded). Installed where it is missing and we may (root);
# elsewhere those tests skip and say why (CI fails).
chromium:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "chromium is missing: the widgets' tests will be skipped (install chromium)"; \
		fi; }

# Stigg's own JavaScript SDKs and React widgets (with React and esbuild, which bundles the
# widgets' test page), which tests/js and tests/widgets run against Tollgate: exactly the
# versions in tests/js/package-lock.json. Without npm those tests skip and say why (CI fails).
tests/js/node_modules/.package-lock.json: tests/js/package-lock.json tests/js/package.json | node
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/js --no-audit --no-fund --loglevel=error; \
	else \
		echo "npm is missing: the JavaScript SDKs' tests will be skipped (install nodejs)"; \
	fi

# Every third-party package comes from requirements.lock, exact versions checked by hash; the
# two local packages are then added without letting pip resolve anything else.
# Reinstall whenever the lock or a package's own metadata changes.
$(VENV)/.installed: requirements.lock pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e ./sdk -e .
	touch $@

# Regenerate requirements.lock from the ranges in both pyproject.toml files (runtime and dev
# extras), for the Python and platform CI uses. Commit the result with the change that needed it.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv && $(BIN)/uv --version | grep -q ' $(UV_VERSION)' || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml sdk/pyproject.toml --extra dev \
		--generate-hashes --python-version 3.11 --python-platform linux \
		--custom-compile-command 'make lock' --quiet $(LOCK_FLAGS) -o requirements.lock

serve: setup
	$(BIN)/tollgate serve --demo --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the house's order: docs/architecture.md

typecheck: setup
	$(BIN)/mypy

# The tests run on two processes (pytest-xdist), each with its own databases and servers, a
# test file per worker (--dist loadfile: a module's tests share its clocked app). WORKERS=0
# runs them on one.
WORKERS ?= 2
XDIST  = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)
# The fuzz tests are one file of independent runs, each on an environment of its own: dealt
# one by one, both workers get some.
XDIST_FUZZ = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist load)

unit: setup
	$(BIN)/pytest -m "not fuzz" $(XDIST)

# Schemathesis over the whole OpenAPI document, on both databases (tests/fuzz): minutes.
fuzz: setup
	$(BIN)/pytest -m fuzz tests/fuzz $(XDIST_FUZZ)

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

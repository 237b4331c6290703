# Two commands on a fresh clone: `make serve` and `make test`. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup serve test lint typecheck unit fuzz clean

setup: $(VENV)/.installed

# Reinstall whenever the dependencies change.
$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ./sdk -e '.[dev]'
	touch $@

serve: setup
	$(BIN)/tollgate serve --demo --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the house's order: docs/architecture.md

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -m "not fuzz"

# Schemathesis over the whole OpenAPI document, on both databases (tests/fuzz): minutes.
fuzz: setup
	$(BIN)/pytest -m fuzz tests/fuzz

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

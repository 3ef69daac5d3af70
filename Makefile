# Two commands matter: `make up` (set up and run it) and `make test` (set up and pass the tests).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup up test fast lint unit bench clean

setup: $(VENV)/.installed

# torch first: the pinned CPU build is on this machine's disk; `torch>=2.4` in pyproject is then satisfied.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[model,web,test]'
	touch $@

up: setup
	$(BIN)/yuejuan up

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/pytest -q -ra

# The quick part: everything but the tests that start the project's processes or a browser (about a minute).
fast: setup lint
	$(BIN)/pytest -q -m "not processes and not browser"

unit: setup
	$(BIN)/pytest -q tests/unit

bench: setup
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

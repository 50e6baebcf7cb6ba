# Set-up and entry points. Every target creates the virtual environment it needs first, so a
# fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint ui

demo: $(VENV)/.installed
	$(BIN)/karen-ops demo

ui: $(VENV)/.installed
	$(BIN)/karen-ops ui

test: $(VENV)/.installed
	$(BIN)/ruff check karen_ops karen_ops_tests benchmarks scripts
	$(BIN)/ruff format --check karen_ops karen_ops_tests benchmarks scripts
	$(BIN)/pytest

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

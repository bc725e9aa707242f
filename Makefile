# arxiv-digest — every target installs what it needs first, so each works on a fresh clone.
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTHON ?= python3

.PHONY: install test test-fast lint golden bench demo run clean

install: $(STAMP)

# -qq on the project install: pip's errors still show, setuptools' editable-install chatter not.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -qq -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

# The inner loop: everything but the tests marked slow (browser, subprocess, big data, >1 s).
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layer contracts in pyproject.toml [tool.importlinter]

golden: $(STAMP)
	DIGEST_REGENERATE_GOLDEN=1 $(BIN)/pytest -q tests -k golden

bench: $(STAMP)
	$(PY) -m tests.bench

demo: $(STAMP)
	$(PY) -m pipeline.interfaces.demo

run: $(STAMP)
	$(BIN)/digest --config config/digest.toml run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache demo-out

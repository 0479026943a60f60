# Two entry points (see README.md): `make book` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test env data execute clean

env: $(STAMP)

# The environment: created from requirements.txt, re-created when the pins change.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mnist_course)" >/dev/null
	touch $@

data: env
	$(BIN)/python -m mnist_course fetch

# (1) Build the rendered book into _build/html from the stored notebook outputs (no execution).
book: env
	$(BIN)/python book/tools.py vendor
	$(BIN)/jupyter-book build . --path-output . --warningiserror --keep-going --quiet
	@echo "Book: $$(pwd)/_build/html/index.html"

# (2) Run every test: lint, unit tests, notebook checks and the rendered-book checks.
test: env data
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --nbval

# For authors: re-execute every chapter in place, in order, with its default parameters.
execute: env data
	$(BIN)/python book/tools.py execute

clean:
	rm -rf _build

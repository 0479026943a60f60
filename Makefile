# Two entry points (see README.md): `make book` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Colab's package set (requirements-colab.txt), where `make test` runs every chapter with small
# parameters, through a Jupyter kernel named "colab" registered inside .venv.
COLAB_VENV ?= .venv-colab
COLAB_STAMP := $(COLAB_VENV)/.installed
COLAB_KERNEL := $(VENV)/share/jupyter/kernels/colab/kernel.json
# pip-tools, only to regenerate the lock files (`make lock`).
LOCK_VENV ?= .venv-lock
PIP_TOOLS := pip-tools==7.6.2
COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.PHONY: book test env colab-env data execute lock clean python-3.11

# Both lock files are resolved for CPython 3.11 (see `make lock`).
python-3.11:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "requirements.txt is locked for CPython 3.11, this is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ..., or see the README for other Pythons")'

env: $(STAMP)

# The book environment: exactly requirements.txt (the lock), then this package without its
# dependencies (they are all in the lock). Re-created when the lock or the package metadata change.
$(STAMP): requirements.txt pyproject.toml | python-3.11
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mnist_course)" >/dev/null
	touch $@

colab-env: $(COLAB_KERNEL)

# The Colab environment does not need .venv, so `make test` creates both at once; only its kernel
# is registered inside .venv, where the book environment's Jupyter finds it (ipykernel warns that
# .venv-colab's own Jupyter would not, which is as intended).
$(COLAB_STAMP): requirements-colab.txt pyproject.toml | python-3.11
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements-colab.txt
	$(COLAB_VENV)/bin/python -m pip install --quiet -e .
	touch $@

$(COLAB_KERNEL): $(COLAB_STAMP) $(STAMP)
	$(COLAB_VENV)/bin/python -Xfrozen_modules=off -m ipykernel install --prefix $(VENV) --name colab --display-name "Python 3 (Colab's packages)" --env PYDEVD_DISABLE_FILE_VALIDATION 1 >/dev/null

data: env
	$(BIN)/python -m mnist_course fetch

# (1) Build the rendered book into _build/html from the stored notebook outputs (no execution).
book: env
	$(BIN)/python book/tools.py vendor
	$(BIN)/jupyter-book build . --path-output . --warningiserror --keep-going --quiet
	@echo "Book: $$(pwd)/_build/html/index.html"

# (2) Run every test: lint, unit tests, the chapters in Colab's package set (small parameters),
# the chapters in the book environment against their stored outputs (nbval), the rendered book.
test:
	$(MAKE) --jobs=2 --output-sync=target env $(COLAB_STAMP)
	$(MAKE) colab-env data
	$(BIN)/ruff check .
	$(BIN)/python -m pytest --nbval

# For authors: re-execute every chapter in place, in order, with its default parameters.
execute: env data
	$(BIN)/python book/tools.py execute

# For authors: regenerate requirements.txt and requirements-colab.txt from the .in files
# (resolved for this Python and platform: CPython 3.11 on Linux x86-64).
lock:
	[ -x $(LOCK_VENV)/bin/pip-compile ] || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet "$(PIP_TOOLS)"; }
	$(COMPILE) requirements.in -o requirements.txt
	$(COMPILE) requirements-colab.in -o requirements-colab.txt

clean:
	rm -rf _build

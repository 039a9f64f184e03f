# lightning-gru developer commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
EXT_SOURCES := $(wildcard lightning_gru/_ext/*.pyx lightning_gru/_ext/*.pxd lightning_gru/_ext/*.h)
EXT_STAMP   := $(VENV)/.ext-built
PYTEST_ARGS ?=

.PHONY: install test test-slow demo bench lint format clean

install: $(EXT_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Dependencies: reinstalled only when the project metadata or the pins change.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt "torch==2.13.0" setuptools "Cython>=3" numpy scipy
	$(PIP) install --quiet -c constraints.txt --no-build-isolation -e ".[dev]"
	touch $@

# The Cython extension: rebuilt in place only when a .pyx/.pxd/.h or setup.py changes.
$(EXT_STAMP): $(STAMP) setup.py $(EXT_SOURCES)
	$(PY) setup.py --quiet build_ext --inplace
	touch $@

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

demo: install
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) -m lightning_gru.demo

bench: install
	$(PY) benchmarks/bench_gru.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf build lightning_gru/_ext/*.c lightning_gru/_ext/*.so lightning_gru/_ext/*.html $(EXT_STAMP)

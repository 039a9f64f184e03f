# lightning-gru developer commands. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
CONSTRAINTS ?= constraints.txt
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
EXT_SOURCES := $(wildcard lightning_gru/_ext/*.pyx lightning_gru/_ext/*.h) \
               lightning_gru/functional/_cython.py
# one stamp per build configuration (setup.py's LIGHTNING_GRU_* variables) and content of the
# sources: a source copied with an older timestamp (`cp -p`) is rebuilt too
EXT_CONFIG  := debug$(LIGHTNING_GRU_DEBUG)-noomp$(LIGHTNING_GRU_NO_OPENMP)-portable$(LIGHTNING_GRU_PORTABLE)
EXT_DIGEST  := $(shell $(PYTHON) -c "import hashlib, sys; print(hashlib.sha256(b''.join(open(f, 'rb').read() for f in sys.argv[1:])).hexdigest()[:16])" $(EXT_SOURCES))
EXT_STAMP   := $(VENV)/.ext-built-$(EXT_CONFIG)-$(EXT_DIGEST)
PYTEST_ARGS ?=

.PHONY: install test test-slow test-lowest demo bench lint format clean

install: $(EXT_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Dependencies: reinstalled only when the project metadata or the pins change.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c $(CONSTRAINTS) "torch==2.13.0" "setuptools>=77" "Cython>=3"
	$(PIP) install --quiet -c $(CONSTRAINTS) --no-build-isolation -e ".[dev]"
	touch $@
# (and whenever the package is missing from the environment, whatever the stamp says)
ifeq ($(wildcard $(VENV)/lib/python*/site-packages/lightning_gru-*.dist-info),)
.PHONY: $(STAMP)
endif

# The Cython extensions (the kernel, the compiled glue): rebuilt in place when a .pyx/.h, the
# glue or setup.py changes, when the build configuration changes (setup.py then recompiles
# everything), or when an extension is missing.
$(EXT_STAMP): $(STAMP) setup.py $(EXT_SOURCES)
	rm -f $(VENV)/.ext-built*
	$(PY) setup.py --quiet build_ext --inplace
	touch $@
ifeq ($(wildcard lightning_gru/_ext/_gru*.so),)
.PHONY: $(EXT_STAMP)
endif
ifeq ($(wildcard lightning_gru/functional/_cython*.so),)
.PHONY: $(EXT_STAMP)
endif

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# The tests with every dependency at the lowest version pyproject.toml allows, in a second
# environment; the kernel it rebuilds in place is rebuilt for .venv at its next target.
test-lowest:
	$(MAKE) test VENV=.venv-lowest CONSTRAINTS=constraints-lowest.txt
	rm -f .venv/.ext-built*

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
	rm -rf build lightning_gru/_ext/*.c lightning_gru/_ext/*.so lightning_gru/_ext/*.html \
		lightning_gru/_ext/_native_cpu.py lightning_gru/functional/_cython.c \
		lightning_gru/functional/_cython*.so $(VENV)/.ext-built*

# Ultimate Rotoscopy — set-up, demo and tests. Every target is idempotent.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch, pinned and installed first (see docs/decisions/DR004-dependencies.md).
# Override for a CUDA machine, e.g. `make setup TORCH_SPEC="torch==2.13.0 --index-url ..."`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,matting
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

demo: setup
	$(BIN)/roto demo --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/roto bench io

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info

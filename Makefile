# Ultimate Rotoscopy — set-up, demo and tests. Every target is idempotent.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch, pinned and installed first (see docs/decisions/DR004-dependencies.md).
# Override for a CUDA machine, e.g. `make setup TORCH_SPEC="torch==2.13.0 --index-url ..."`.
TORCH_SPEC ?= torch==2.13.0
# torchvision must match torch, or pip "upgrades" torch to the newest (CUDA) build to satisfy it.
TORCHVISION_SPEC ?= torchvision==0.28.0
# SAM 2 (default segmenter with weights): built without the CUDA extension and against the torch
# above (no build isolation, else the build env fetches its own CUDA torch). See DR007.
SAM2_SPEC ?= sam2==1.1.0
# Depth Anything 3: the network code only, without its declared (heavy, numpy<2) dependencies;
# its light imports are listed beside it. See DR011.
DEPTH_SPEC ?= depth-anything-3==0.1.1
DEPTH_LIGHT_DEPS ?= omegaconf addict einops safetensors
EXTRAS ?= dev,matting,server,cluster
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup demo test test-all bench clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC) $(TORCHVISION_SPEC)
	$(BIN)/python -m pip install --quiet setuptools wheel
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet --no-build-isolation $(SAM2_SPEC)
	$(BIN)/python -m pip install --quiet --no-deps $(DEPTH_SPEC)
	$(BIN)/python -m pip install --quiet $(DEPTH_LIGHT_DEPS)
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

# streamlabel: `make run SOURCE=<rtsp url, device or file>` runs the daemon (on a file: until it is read; again on
# the same file: resumes after its last stored frame); `make test` runs the test suite.
# Both create .venv and install what is missing on first use.

PYTHON ?= python3
VENV ?= .venv
CONFIG ?= config/streamlabel.yml
SOURCE ?=
PYTEST_ARGS ?=
# A PyTorch wheel index for the first install, e.g. PyTorch's CPU-only index on a machine without a GPU (README).
TORCH_INDEX ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format selftest clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "streamlabel needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	@# torch first (the range admits the build already on the machine), then sam2 built against it without
	@# its optional CUDA extension, then streamlabel itself.
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "torch>=2.5.1" "torchvision>=0.20.1"
	SAM2_BUILD_CUDA=0 $(BIN)/pip install --quiet --no-build-isolation "sam2>=1.1.0"
	$(BIN)/pip install --quiet -e ".[test,openvino]"
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlabel run -c $(CONFIG) $(if $(SOURCE),--source "$(SOURCE)")

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

selftest: $(STAMP)
	$(BIN)/streamlabel selftest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

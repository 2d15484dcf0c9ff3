# matsed-lite: two commands on a fresh machine.
#   make tour   generate DESED-lite and execute every notebook headless (PRESET=cpu by default)
#   make test   run the whole test suite
#               (the browser test of the explorers runs when Chromium and playwright are there)
#   make test-gpu  every notebook at the gpu preset with GPU-level checks (needs CUDA)
# Both set up a local .venv first unless a virtual or conda environment is active.

PRESET  ?= cpu
PYTHON  ?= python3
WORKERS ?= $(shell nproc 2>/dev/null || echo 1)

ifneq ($(VIRTUAL_ENV),)
  ENV_DIR := $(VIRTUAL_ENV)
  PY      := python
else ifneq ($(filter-out base,$(CONDA_DEFAULT_ENV)),)
  ENV_DIR := $(CONDA_PREFIX)
  PY      := python
else
  ENV_DIR := .venv
  PY      := .venv/bin/python
endif
STAMP := $(ENV_DIR)/.matsed-lite-installed

DATA    := data/desed_lite_$(PRESET)
OUT     := build/$(PRESET)
# Only the cpu preset's figures are the committed ones; others stay under build/.
FIGURES := $(if $(filter cpu,$(PRESET)),figures,$(OUT)/figures)

.PHONY: install tour test test-gpu data clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@if [ "$(ENV_DIR)" = ".venv" ] && [ ! -x .venv/bin/python ]; then \
	  echo "creating .venv with $(PYTHON)"; $(PYTHON) -m venv .venv; fi
	$(PY) -m pip install --upgrade "pip>=23"
	$(PY) -m pip install -e ".[dev]"
	@touch $(STAMP)

data: install
	$(PY) -m matsed_lite synth --out $(DATA) --preset $(PRESET) --workers $(WORKERS)

tour: data
	$(PY) -m matsed_lite notebooks --preset $(PRESET) --data $(DATA) --out $(OUT) --figures $(FIGURES)

test: install
	$(PY) -m pytest

test-gpu: install
	MATSED_GPU_OUT=build/gpu-tests $(PY) -m pytest -m gpu tests/test_notebooks_gpu.py -v

clean:
	rm -rf build .pytest_cache

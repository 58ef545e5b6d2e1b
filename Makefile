# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install what is needed (torch first, as the tested recipe says).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.geodino-installed
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# pytest-xdist workers: CI has 2 cores (a larger machine may pass more: make test TEST_WORKERS=8)
TEST_WORKERS ?= 2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck venv clean-venv benchmarks

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@# torch and torchvision first: on this machine they come from local disk (see reference install recipe).
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e '.[dev,stac,netcdf]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/geodino demo --out demo_out

lint: $(STAMP)
	$(VENV)/bin/ruff check geodino tests benchmarks
	$(VENV)/bin/ruff format --check geodino tests benchmarks

test: $(STAMP)
	$(VENV)/bin/ruff check geodino tests benchmarks
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=25 tests

# static type check (settings: [tool.mypy] in pyproject.toml); not part of `make test`: mypy goes into .venv on demand
# mypy 2.4 or later: mypy 1.13 narrows less (19 errors in the package that 2.4.1 passes)
MYPY_SPEC ?= "mypy>=2.4" types-pyyaml pandas-stubs types-requests
typecheck: $(STAMP)
	@$(PY) -c "import sys, mypy.version as m; sys.exit(tuple(map(int, m.__version__.split('.')[:2])) < (2, 4))" \
		2>/dev/null || $(PIP) install --quiet $(MYPY_SPEC)
	$(PY) -m mypy

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)

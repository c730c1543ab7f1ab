# bgkit: `make demo` runs the main job, `make test` runs every test. Both bootstrap themselves:
# a virtual environment in .venv (pip), and Chromium for the browser tests (apt, needs root or sudo).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.bgkit-installed
OUT    ?= out/demo
CHROMIUM ?= /usr/bin/chromium
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test test-fast notebook bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) apt-get install -y -q chromium

demo: $(STAMP)
	$(VENV)/bin/bgkit demo --out $(OUT)

test: $(STAMP) $(CHROMIUM)
	@# the tests without a browser in two processes, then the browser tests; both run, either fails the target
	status=0; \
	$(PY) -m pytest -q -ra -n 2 --dist loadfile -m "not browser" --durations=15 || status=1; \
	$(PY) -m pytest -q -ra -m browser --durations=10 || status=1; \
	exit $$status

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -n 2 --dist loadfile -m "not browser"

notebook: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m bgkit.bench --memory-frames 2000 --json out/bench.json

clean:
	rm -rf $(VENV) out test-artifacts .pytest_cache

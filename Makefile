# The README's whole set-up: `make run` and `make test` work on a fresh machine.
# A Python >= 3.12 is found by itself: $(PYTHON) if given, else python3.13/3.12 on PATH,
# else pyenv's versions, else python3 if it is new enough.
SHELL := /bin/bash
VENV  := .venv
VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SCENARIO ?= one_sided

define FIND_PYTHON
for c in "$(PYTHON)" python3.13 python3.12 \
         $$(ls -d $$HOME/.pyenv/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV) python3; do \
  [ -n "$$c" ] || continue; \
  command -v "$$c" >/dev/null 2>&1 || continue; \
  if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then \
    command -v "$$c"; exit 0; fi; \
done; exit 1
endef
export FIND_PYTHON

.PHONY: run test lint setup clean figures results app bench chromium docs

$(VPY):
	@py=$$(bash -c "$$FIND_PYTHON") || { \
	  echo "error: no Python >= 3.12 found (tried PYTHON=$(PYTHON), python3.13, python3.12, pyenv, python3)." >&2; \
	  echo "       Install one (e.g. 'pyenv install 3.12') or run 'make PYTHON=/path/to/python3.12 ...'." >&2; \
	  exit 1; }; \
	echo "Creating $(VENV) with $$py ($$($$py --version))"; \
	"$$py" -m venv $(VENV)

$(STAMP): $(VPY) pyproject.toml
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e ".[dev]"
	$(VPY) -m abm.dashboard_assets
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/abm run $(SCENARIO)

# The browser test drives Debian's chromium (Playwright cannot download a browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the dashboard's browser test"; \
	  { apt-get update -qq && apt-get install -y -qq chromium; } >/dev/null 2>&1 || \
	  echo "warning: could not install chromium; the browser test will report it missing"; }

test: $(STAMP) chromium
	MPLBACKEND=Agg ABM_NOTEBOOK_SMALL=1 $(VENV)/bin/python -m pytest -n 2 --dist loadgroup -q tests

figures: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/abm figures results/paper --out results/figures

# recompute the stored results the figures come from, at paper size (over an hour on 2 cores:
# the Sobol sweep alone is 17,920 runs)
results: $(STAMP)
	$(VENV)/bin/abm reproduce --out results/paper

app: $(STAMP)
	$(VENV)/bin/abm app

# speed figures for BENCHMARKS.md: book, default scenario, scaling to 100,000 traders, sweep
bench: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/abm bench --out results/benchmarks

# the API reference from the docstrings, into results/site/ (the suite builds it strictly)
docs: $(STAMP)
	$(VENV)/bin/mkdocs build

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

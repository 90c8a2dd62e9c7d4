# canary-analyzer: the two set-up commands (`make demo`, `make test`) and friends.
# Works on a fresh Debian machine as root: installs Debian packages and a venv itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint demo bench debs venv clean docs chart

# Real Prometheus and Alertmanager (tests, demo); with BROWSER=1 also Chromium and its
# driver for the report and status-page browser tests.
debs:
	@missing=""; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$(BROWSER)" ]; then \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	fi; \
	$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check analyzer tests
	$(BIN)/lint-imports

# Debian packages first (a fresh machine may lack python3-venv), then the venv and lint.
test:
	$(MAKE) --no-print-directory debs BROWSER=1
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q -p no:cacheprovider -n 4 --dist load --maxschedchunk 1

demo: debs venv
	$(BIN)/canary-analyzer demo

bench: debs venv
	$(BIN)/canary-analyzer bench judge --scenarios 1000 --seed 1 --limit-scenarios 200 --calibration-scenarios 20 --decision-scenarios 6 --allowance-scenarios 20
	$(BIN)/canary-analyzer bench night --namespaces 12 --nights 60 --night-budget 0.05
	$(BIN)/canary-analyzer bench night --namespaces 25 --nights 5 --anytime
	$(BIN)/canary-analyzer bench scale --namespaces 500
	$(BIN)/canary-analyzer bench memory --runs 3

docs: venv chart
	$(BIN)/python -m analyzer.settings_reference > docs/configuration.md

# the chart's values.schema.json and its README's values table, from the settings
chart: venv
	$(BIN)/python -m analyzer.chart_schema

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

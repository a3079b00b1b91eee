# tribeflow: `make demo` (install + run the demo workflow), `make test` (the test suite).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# No pip cache: the wheels (torch's CUDA stack alone is several GB) would be stored
# twice, and CI's disk once ran out during the install.
PIP_INSTALL := $(PY) -m pip install -q --no-cache-dir
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CORES ?= 2

.PHONY: demo test test-slow check lint system venv demo-models demo-stimuli clean-demo

demo: system venv demo-models demo-stimuli
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/demo.yaml

test: system venv check
	$(VENV)/bin/pytest -q

# The code checks `make test` runs before the tests. The second mypy checks the
# adapters' calls into tribe_core (Snakemake injects their `snakemake` object).
check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile rules/
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --disable-error-code name-defined workflow_scripts

# Heavier checks: long media, kill-anywhere, sharded workflow, real SLURM (CI runs
# them after `make test` when time allows).
test-slow: system venv
	$(VENV)/bin/pytest -q -m "slow or slurm"

# snakemake --lint parses the workflow, which needs the demo's stimuli folder and
# checkpoint (the config check refuses a checkpoint that does not exist).
lint: check demo-stimuli demo-models
	$(VENV)/bin/snakemake --lint --configfile config/demo.yaml

# ffmpeg and espeak-ng from Debian/Ubuntu packages, installed only if missing.
system:
	@command -v ffmpeg >/dev/null && command -v espeak-ng >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg espeak-ng >/dev/null; }

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-oracles.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -r requirements.lock
	$(PIP_INSTALL) --no-deps -r requirements-oracles.txt
	$(PIP_INSTALL) --no-deps -e .
	touch $@

demo-models: venv
	$(PY) -m tribe_core.demo_models demo_models

demo-stimuli: venv
	$(PY) scripts/make_demo_stimuli.py demo_stimuli

clean-demo:
	rm -rf demo_models demo_stimuli results/*/

# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install, receive every telegram of the bundled recording
#   make test   create .venv, install with test dependencies (and, as root, the Debian
#               packages some tests use), run pytest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# numba's cache=True writes compiled kernels here, so compilation is paid once.
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache

.PHONY: demo test bench install install-test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Debian packages some tests use (SoapySDR, rtl-433, mosquitto); installs as root,
# otherwise says what is missing, and the tests that need it skip with that reason.
system-deps:
	bash scripts/install-system-deps.sh

demo: install
	$(BIN)/wmbus replay recordings/multimode_868.95M_2400k.sigmf-meta --keys recordings/keys.txt
	$(BIN)/wmbus decode --keys recordings/keys.txt - < recordings/example_telegrams.txt

test: install-test system-deps
	$(BIN)/python -m pytest

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

# Kernel micro-benchmarks against their numpy twins, then throughput and sensitivity
# (with rtl_433 side by side when it is installed); results in benchmarks/results.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m pytest benchmarks/test_kernels_bench.py -p no:cacheprovider \
	    --benchmark-group-by=group --benchmark-columns=median,iqr,rounds
	$(BIN)/wmbus bench throughput $(if $(shell command -v rtl_433),--compare rtl_433) --out benchmarks/results
	$(BIN)/wmbus bench sensitivity $(if $(shell command -v rtl_433),--compare rtl_433) --out benchmarks/results

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache .hypothesis

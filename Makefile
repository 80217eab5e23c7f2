# Two commands set everything up on a fresh machine:
#   make demo   create .venv, install, compile the kernels, receive every telegram of
#               the bundled recording
#   make test   create .venv, install with test dependencies (and, as root, the Debian
#               packages some tests use), compile the kernels, run pytest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# numba's cache=True writes compiled kernels here, so compilation is paid once.
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache

.PHONY: demo test bench install install-test system-deps kernels clean

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

# The kernels compiled ahead of time (dsp.kernels): a receiver then runs without
# numba or LLVM loaded (~40 MiB instead of ~150 MiB).  Needs a C compiler; without one
# it says so and the kernels are JIT-compiled instead, so a failure does not stop make.
kernels: install
	-$(BIN)/python -m dsp.build_kernels --if-stale

demo: install kernels
	$(BIN)/wmbus replay recordings/multimode_868.95M_2400k.sigmf-meta --keys recordings/keys.txt
	$(BIN)/wmbus decode --keys recordings/keys.txt - < recordings/example_telegrams.txt

test: install-test system-deps kernels
	$(BIN)/python -m pytest

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(VENV)/.installed $@

# Kernel micro-benchmarks against their numpy twins, then throughput and sensitivity
# (with rtl_433 side by side when it is installed); results in benchmarks/results.
bench: $(VENV)/.installed-bench kernels
	$(BIN)/python -m pytest benchmarks/test_kernels_bench.py -p no:cacheprovider \
	    --benchmark-group-by=group --benchmark-columns=median,iqr,rounds
	$(BIN)/wmbus bench throughput $(if $(shell command -v rtl_433),--compare rtl_433) --out benchmarks/results
	$(BIN)/wmbus bench sensitivity $(if $(shell command -v rtl_433),--compare rtl_433) --out benchmarks/results

clean:
	rm -rf $(VENV) .numba_cache .pytest_cache .hypothesis dsp/_kernels_aot.*

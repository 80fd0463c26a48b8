# Two commands do all the set-up (see README): `make sample` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lucr-installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

.PHONY: install sample test bench
install: $(STAMP)

sample: $(STAMP)  ## run the main job on the bundled China 2019 sample -> lucr-output/
	$(VENV)/bin/lucr run --overwrite

test: $(STAMP)  ## run the test suite (what CI runs)
	$(PY) -m pytest

bench: $(STAMP)  ## benchmark against the I/O floor and exactextract (not part of the tests)
	$(PY) benchmarks/bench_spine.py

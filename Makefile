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

.PHONY: install sample test bench peers browser
install: $(STAMP)

sample: $(STAMP)  ## run the main job on the bundled China 2019 sample -> lucr-output/
	$(VENV)/bin/lucr run --overwrite

test: $(STAMP)  ## run the test suite (what CI runs)
	$(PY) -m pytest

bench: $(STAMP)  ## benchmark against the I/O floor and exactextract (not part of the tests)
	$(PY) benchmarks/bench_spine.py

# ---- InVEST peer venv (parity test reference) ---------------------------------------
# natcap-invest 3.20.2 (InVEST carbon) lives in its OWN venv, .venv-peers: its GDAL
# bindings are compiled against the system libgdal (apt libgdal-dev, 3.6.2 on Debian 12)
# and must not share a process with the GDAL bundled in the rasterio/pyogrio wheels of
# .venv.  The tests run InVEST as a subprocess with .venv-peers/bin/python (tests/peers.py).
# PyPI 'gdal' has no wheels, and pygeoprocessing/natcap-invest are sdists that need the
# bindings, numpy, cython and babel (`pybabel` on PATH) at build time, hence the steps.
# Pins: benchmarks/peers/constraints.txt.  A second `make peers` is a no-op (stamp).
PEERS_VENV ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.peers-installed
PEERS_CONS := benchmarks/peers/constraints.txt
# apt packages (+ python3-venv / python3-dev if $(PYTHON) lacks ensurepip / Python.h)
PEERS_APT := libgdal-dev gdal-bin g++
PEERS_PIP = PATH="$(abspath $(PEERS_VENV))/bin:$$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1 \
	$(PEERS_VENV)/bin/python -m pip install --quiet -c $(PEERS_CONS)

peers: $(PEERS_STAMP)  ## InVEST carbon in .venv-peers for the parity test (needs root/sudo for apt)

$(PEERS_STAMP): $(PEERS_CONS)
	@missing=""; for p in $(PEERS_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c "import sysconfig, os, sys; sys.exit(not os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))" \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "peers: apt-get install$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@echo "peers: system libgdal $$(gdal-config --version); building $(PEERS_VENV) (a few minutes)"
	@rm -rf $(PEERS_VENV) && $(PYTHON) -m venv $(PEERS_VENV)
	@echo "peers: [1/4] pip, setuptools, wheel, numpy, cython, setuptools_scm, babel"
	@$(PEERS_PIP) --upgrade pip setuptools wheel
	@$(PEERS_PIP) numpy cython setuptools_scm babel
	@echo "peers: [2/4] gdal[numpy]==$$(gdal-config --version) (compiled against the system libgdal)"
	@$(PEERS_PIP) --no-build-isolation "gdal[numpy]==$$(gdal-config --version)"
	@echo "peers: [3/4] pygeoprocessing (sdist)"
	@$(PEERS_PIP) --no-build-isolation pygeoprocessing
	@echo "peers: [4/4] natcap-invest (sdist)"
	@$(PEERS_PIP) --no-build-isolation natcap-invest
	@$(PEERS_VENV)/bin/python -c "import natcap.invest, natcap.invest.carbon, pygeoprocessing; from osgeo import gdal; \
	  print('peers: OK: natcap.invest', natcap.invest.__version__, '| pygeoprocessing', pygeoprocessing.__version__, '| osgeo', gdal.__version__)"
	@touch $(PEERS_STAMP)

# ---- the report test's browser and fonts --------------------------------------------
# Headless Chromium renders report.html in tests/test_report.py; a CJK font draws the Chinese
# unit names in the figures (Debian packages; installed with apt-get when missing).
BROWSER_APT := chromium fonts-noto-cjk
browser:  ## headless Chromium and a CJK font for the report test (needs root/sudo for apt)
	@missing=""; for p in $(BROWSER_APT); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "browser: apt-get install$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

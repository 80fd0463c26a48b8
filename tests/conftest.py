"""Shared fixtures: the bundled sample, and runs of the spine on it (computed once per session)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lucr.config import SAMPLE_CONFIG, load_config
from lucr.runner import run

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "data" / "sample"
SAMPLE_RASTER = SAMPLE_DIR / "modis_mcd12c1_2019_igbp" / "mcd12c1_2019_igbp_china.tif"
SAMPLE_PROVINCES = SAMPLE_DIR / "china_admin_cnmaps" / "china_provinces_lite.gpkg"
SAMPLE_CITIES = SAMPLE_DIR / "china_admin_cnmaps" / "china_cities_lite.gpkg"


@pytest.fixture(scope="session")
def sample_config():
    return load_config(SAMPLE_CONFIG)


@pytest.fixture(scope="session")
def fast_run(sample_config, tmp_path_factory):
    """The bundled sample with the fast engine (cell centres), default chunks."""
    logging.getLogger("lucr").setLevel(logging.WARNING)
    return run(sample_config, out_dir=tmp_path_factory.mktemp("fast"), engine="fast")


@pytest.fixture(scope="session")
def exact_run(sample_config, tmp_path_factory):
    """The same run with the exact engine (coverage fractions at unit boundaries; the default)."""
    return run(sample_config, out_dir=tmp_path_factory.mktemp("exact"), engine="exact")

"""Outputs never destroy inputs or earlier results (issue: never a wrong number, never a lost file)."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from tests.conftest import SAMPLE_CITIES, SAMPLE_RASTER
from tests.test_bad_inputs import base_config, run_cli


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("which", ["raster", "zones"])
def test_overwrite_never_replaces_an_input(tmp_path, capsys, which):
    """An input that has an output's name, in the output folder: refused even with --overwrite."""
    out = tmp_path / "out"
    out.mkdir()
    if which == "raster":
        victim = out / "carbon_balance.tif"
        shutil.copy(SAMPLE_RASTER, victim)
        cfg = base_config(tmp_path, landcover={"path": str(victim)})
    else:
        victim = out / "zonal_cities.gpkg"
        shutil.copy(SAMPLE_CITIES, victim)
        cfg = base_config(tmp_path)
        cfg["zones"][1]["path"] = str(victim)
    before = _digest(victim)
    code, err = run_cli(tmp_path, cfg, "--overwrite", capsys=capsys)
    assert code == 2 and "Traceback" not in err, err
    assert f"would replace the input file {victim}" in err and "Fix:" in err
    assert _digest(victim) == before
    assert sorted(p.name for p in out.iterdir()) == [victim.name]  # nothing else written either

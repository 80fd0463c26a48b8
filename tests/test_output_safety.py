"""Outputs never destroy inputs or earlier results (issue: never a wrong number, never a lost file)."""

from __future__ import annotations

import hashlib
import os
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


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_staging_of_killed_runs_is_removed_and_live_ones_kept(tmp_path):
    from lucr.config import parse_config
    from lucr.export import _HOST, STAGING_PREFIX
    from lucr.runner import run

    out = tmp_path / "out"
    out.mkdir()
    dead = out / f"{STAGING_PREFIX}{_HOST}-{_dead_pid()}-abc123"
    (dead / "carbon_balance.full.tif").parent.mkdir()
    (dead / "carbon_balance.full.tif").write_bytes(b"\0" * 1000)
    live = out / f"{STAGING_PREFIX}{_HOST}-{os.getppid()}-def456"  # the test runner's parent: alive
    live.mkdir()
    other_host = out / f"{STAGING_PREFIX}otherhost-{_dead_pid()}-ghi789"
    other_host.mkdir()
    run(parse_config(base_config(tmp_path), tmp_path))
    assert not dead.exists() and live.exists() and other_host.exists()
    assert (out / "carbon_balance.tif").exists()


def test_failed_run_removes_the_output_folder_it_created(tmp_path, capsys):
    """The run fails after creating the folder (codes missing from the table, found in the pass)."""
    cfg = base_config(tmp_path, legend=None, coefficients=str(tmp_path / "two.csv"))
    (tmp_path / "two.csv").write_text("code,name,coef,ref,status\n1,forest,-0.6,test,user\n13,urban,50,test,user\n")
    code, err = run_cli(tmp_path, cfg, capsys=capsys)
    assert code == 2 and "missing from the coefficient table" in err, err
    assert not (tmp_path / "out").exists()

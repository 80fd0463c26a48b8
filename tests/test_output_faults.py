"""Faults of the output folder: a full disk (in the pass, the COG assembly, the tables), a
read-only file system, a file-size limit. Each run is a real ``lucr run`` subprocess on a
real file system: a small tmpfs mounted in a private mount namespace (``unshare -rm``,
no root needed where user namespaces are allowed), or ``RLIMIT_FSIZE``. Each asserts
exit code 2, one message naming the folder, the cause and the fix, no traceback, and the
output folder (holding an earlier run's files) byte-identical afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio

from lucr.runner import run

LUCR = [sys.executable, "-m", "lucr.cli"]
PREVIOUS = {"carbon_balance.tif": "previous map", "zonal_provinces.csv": "previous,table\n", "lucr_outputs.json": '{"written_by": "lucr", "files": ["carbon_balance.tif", "zonal_provinces.csv"]}'}


def _can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _require_unshare() -> None:
    if not _can_unshare():
        reason = "mounting a small tmpfs needs user namespaces (`unshare -rm`), not allowed on this machine"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


# Runs inside the private mount namespace: mount, fill the folder with an earlier run's
# files, snapshot, run lucr, snapshot again; the results go to a JSON file outside the mount.
INSIDE = textwrap.dedent(
    """
    import hashlib, json, subprocess, sys
    from pathlib import Path
    mnt, size, readonly, result, previous = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "ro", sys.argv[4], json.loads(sys.argv[5])
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], check=True)
    out = mnt / "out"
    out.mkdir()
    for name, text in previous.items():
        (out / name).write_text(text)
    if readonly:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    snap = lambda: {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*")) if p.is_file()}
    before = snap()
    proc = subprocess.run([*sys.argv[6:], "--out", str(out), "--overwrite", "--quiet"], capture_output=True, text=True)
    Path(result).write_text(json.dumps({"code": proc.returncode, "stderr": proc.stderr, "before": before, "after": snap(),
                                        "all": sorted(str(p.relative_to(out)) for p in out.rglob("*"))}))
    """
)


def _run_on_tmpfs(tmp_path: Path, size: str, readonly: bool = False) -> dict:
    _require_unshare()
    (tmp_path / "mnt").mkdir()
    script = tmp_path / "inside.py"
    script.write_text(INSIDE)
    result = tmp_path / "result.json"
    subprocess.run(
        ["unshare", "-rm", sys.executable, str(script), str(tmp_path / "mnt"), size, "ro" if readonly else "rw", str(result), json.dumps(PREVIOUS), *LUCR, "run"],
        check=True, timeout=600,
    )
    return json.loads(result.read_text())


def _assert_refused_cleanly(outcome: dict, *fragments: str) -> None:
    err = " ".join(outcome["stderr"].split())
    assert outcome["code"] == 2, err
    assert "lucr: error:" in err and "Traceback" not in err, err
    for fragment in (*fragments, "nothing was published", "Fix:"):
        assert fragment in err, (fragment, err)
    assert outcome["after"] == outcome["before"], "the output folder changed"
    assert outcome["all"] == sorted(PREVIOUS), f"left behind: {outcome['all']}"


@pytest.mark.parametrize(
    "size, where",
    [
        ("60k", "carbon_balance"),  # the map's first blocks
        ("600k", ""),  # the COG assembly or the first tables
        ("1400k", ".gpkg"),  # the map fits; a GeoPackage does not
    ],
    ids=["in-the-pass", "assembly", "tables"],
)
def test_disk_full(tmp_path, size, where):
    outcome = _run_on_tmpfs(tmp_path, size)
    _assert_refused_cleanly(outcome, "/out: writing the outputs failed: the disk is full", where)


def test_read_only_folder(tmp_path):
    outcome = _run_on_tmpfs(tmp_path, "4m", readonly=True)
    _assert_refused_cleanly(outcome, "/out: writing the outputs failed: the file system is read-only", "writable disk")


def test_file_size_limit(tmp_path):
    """RLIMIT_FSIZE (``ulimit -f``): writes fail with EFBIG, which GDAL and pyogrio report in their own words."""
    out = tmp_path / "out"
    out.mkdir()
    for name, text in PREVIOUS.items():
        (out / name).write_text(text)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process

    proc = subprocess.run([*LUCR, "run", "--out", str(out), "--overwrite", "--quiet"], capture_output=True, text=True, preexec_fn=limit, timeout=600)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "lucr: error:" in err and "Traceback" not in err, err
    assert "writing the outputs failed" in err and "ulimit -f" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _damaged_tile_copy(tmp_path):
    """The sample land cover as 256-cell tiles with overviews, one full-resolution tile overwritten."""
    from tests.conftest import SAMPLE_RASTER

    with rasterio.open(SAMPLE_RASTER) as src:
        profile, data = src.profile, src.read()
    profile.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    path = tmp_path / "lc.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4, 8], rasterio.enums.Resampling.nearest)  # intact: checks before the pass read them
    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    damaged = bytearray(path.read_bytes())
    damaged[offset : offset + 200] = np.random.default_rng(3).integers(0, 256, 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(damaged))
    return path


@pytest.mark.parametrize("disk_nearly_full", [False, True])
def test_a_damaged_input_block_is_named_even_when_the_output_disk_is_nearly_full(tmp_path, monkeypatch, disk_nearly_full):
    """GDAL's "IReadBlock failed" names the input; a nearly full output disk alone made it read as "disk full"."""
    import yaml

    import lucr.export
    from lucr.config import load_config
    from lucr.errors import InputFileError
    from tests.test_bad_inputs import base_config

    path = _damaged_tile_copy(tmp_path)
    if disk_nearly_full:  # the output's file system reads as nearly full, whatever this machine has free
        monkeypatch.setattr(lucr.export, "NEARLY_FULL_BYTES", 1 << 62)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(base_config(tmp_path, landcover={"path": str(path)})))
    with pytest.raises(InputFileError) as err:
        run(load_config(config), out_dir=tmp_path / "out")
    message = str(err.value)
    assert str(path) in message and "lc.tif, band 1: IReadBlock failed at X offset 1, Y offset 1" in message, message
    assert "disk is full" not in message
    assert not (tmp_path / "out").exists()  # nothing published, the folder the run made removed

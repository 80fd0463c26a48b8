"""Outputs never destroy inputs or earlier results (issue: never a wrong number, never a lost file)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

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


@pytest.fixture(scope="module")
def big_sample(tmp_path_factory):
    """The sample raster at 5x the resolution (32 million cells): a pass long enough to interrupt."""
    import numpy as np
    import rasterio

    d = tmp_path_factory.mktemp("big")
    with rasterio.open(SAMPLE_RASTER) as src:
        codes, profile, t = src.read(1), src.profile, src.transform
    big = np.repeat(np.repeat(codes, 5, axis=0), 5, axis=1)
    profile.update(width=big.shape[1], height=big.shape[0], transform=t @ t.scale(0.2), tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(d / "big.tif", "w", **profile) as dst:
        dst.write(big, 1)
    return d / "big.tif"


@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupt_during_the_pass_publishes_nothing(tmp_path, big_sample, signame, code):
    """A signal during the pass: exit code, one line saying so, no traceback, no staging folder, no output."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import yaml

    cfg = base_config(tmp_path, landcover={"path": str(big_sample)})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    out = tmp_path / "out"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "lucr"), "run", str(tmp_path / "config.yaml"), "--quiet", "--chunks", "256"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".lucr-staging-*")):  # the pass starts right after the staging folder
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    time.sleep(0.5)
    assert proc.poll() is None, "the run finished before the signal: make the input bigger"
    proc.send_signal(getattr(signal, signame))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, (proc.returncode, stderr)
    assert "lucr: interrupted" in stderr + stdout and "Traceback" not in stderr, stderr
    assert not out.exists() or list(out.iterdir()) == [], list(out.iterdir())


def test_overwrite_removes_what_the_earlier_run_wrote_and_this_one_does_not(tmp_path, capsys):
    """A folder never holds the answers of two runs; files lucr did not write stay."""
    import json

    out = tmp_path / "out"
    first = base_config(tmp_path, output={"dir": str(out), "tables": ["gpkg", "csv"]})
    from lucr.config import parse_config
    from lucr.runner import run

    run(parse_config(first, tmp_path))
    assert (out / "zonal_cities.gpkg").exists()
    (out / "my_notes.txt").write_text("mine")
    second = base_config(tmp_path, output={"dir": str(out), "tables": ["csv"]})
    code, err = run_cli(tmp_path, second, capsys=capsys)  # without --overwrite: the earlier outputs are named
    assert code == 2 and "zonal_cities.gpkg" in err and "--overwrite" in err, err
    run(parse_config(second, tmp_path), overwrite=True)
    left = sorted(p.name for p in out.iterdir())
    assert "zonal_cities.gpkg" not in left and "zonal_cities.csv" in left and "my_notes.txt" in left
    manifest = json.loads((out / "lucr_outputs.json").read_text())["files"]
    assert sorted(manifest) == sorted(n for n in left if n not in ("my_notes.txt", "lucr_outputs.json"))


KILL_IN_COMMIT = """
import os, signal, sys
import lucr.export as export
from lucr.cli import main

kill_at, counted, real_replace = int(sys.argv[1]), [0], os.replace

def replace(src, dst):
    real_replace(src, dst)
    if export._committing:
        counted[0] += 1
        if counted[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

commit = export.StagedOutputs.commit

def committing(self):
    export._committing = True
    return commit(self)

export._committing = False
os.replace = replace
export.StagedOutputs.commit = committing
sys.argv = ["lucr", "run", sys.argv[2], "--quiet", "--overwrite"]
main()
"""


@pytest.mark.parametrize("kill_at", [1, 4, 12])  # the journal written; old outputs moved aside; half the new ones in place
def test_sigkill_in_the_commit_is_finished_by_the_next_run(tmp_path, kill_at):
    """SIGKILL after the k-th rename of the commit: afterwards the folder holds exactly the killed
    run's complete set (finished from its journal), the earlier run's other outputs gone."""
    import json
    import subprocess
    import sys

    import yaml

    from lucr.export import JOURNAL, finish_killed_commit

    out = tmp_path / "out"
    earlier = base_config(tmp_path, output={"dir": str(out), "tables": ["gpkg"]})
    killed = base_config(tmp_path, output={"dir": str(out), "tables": ["csv", "parquet"]})
    reference = base_config(tmp_path, output={"dir": str(tmp_path / "reference"), "tables": ["csv", "parquet"]})
    for name, cfg in (("earlier", earlier), ("killed", killed), ("reference", reference)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    lucr_exe = str(Path(sys.executable).parent / "lucr")
    for name in ("earlier", "reference"):
        assert subprocess.run([lucr_exe, "run", str(tmp_path / f"{name}.yaml"), "--quiet"], capture_output=True).returncode == 0
    proc = subprocess.run([sys.executable, "-c", KILL_IN_COMMIT, str(kill_at), str(tmp_path / "killed.yaml")], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # killed inside the commit
    assert (out / JOURNAL).exists()
    assert finish_killed_commit(out)
    ours = {p.name: _digest(p) for p in out.iterdir() if p.name != ".lucr-lock"}  # the killed run's lock file (released by its death)
    ref = {p.name: _digest(p) for p in (tmp_path / "reference").iterdir()}
    assert set(ours) == set(ref), (sorted(ours), sorted(ref))
    for name in ref:
        if name.endswith((".csv", ".parquet", ".tif")):
            assert ours[name] == ref[name], name
    assert sorted(json.loads((out / "lucr_outputs.json").read_text())["files"]) == sorted(set(ref) - {"lucr_outputs.json"})


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path, capsys):
    """Another run holds the folder (its lock taken here, as a running lucr holds it)."""
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lucr-lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 on elsewhere")
        held.flush()
        code, err = run_cli(tmp_path, base_config(tmp_path), capsys=capsys)
    assert code == 2 and "another lucr run is writing into this folder (pid 4242 on elsewhere)" in err, err
    assert sorted(p.name for p in out.iterdir()) == [".lucr-lock"]  # nothing written; the holder's lock untouched


KILL_WHILE = """
import os, signal, sys
import lucr.cog as cog
import lucr.export as export
from lucr.cli import main

where, calls = sys.argv[1], [0]

def killer(real, after):
    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] > after:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapped

if where == "pass":  # the 3rd block written to the streamed map
    export.GeoTiffWindowWriter.__setitem__ = killer(export.GeoTiffWindowWriter.__setitem__, 2)
else:  # the COG assembly: after the first level's tiles are copied
    cog._copy_tiles = killer(cog._copy_tiles, 1)
sys.argv = ["lucr", "run", sys.argv[2], "--quiet", "--overwrite", "--chunks", "256"]
main()
"""


@pytest.mark.parametrize("where", ["pass", "assembly"])
def test_sigkill_in_the_pass_or_the_assembly_leaves_the_previous_set(tmp_path, big_sample, where):
    """SIGKILL mid-run: the folder keeps the earlier run's complete set byte for byte; the next
    run cleans up after the killed one and gives results identical to an undisturbed run."""
    import subprocess
    import sys

    import yaml

    out = tmp_path / "out"
    earlier = base_config(tmp_path, output={"dir": str(out), "tables": ["csv"]})
    now = base_config(tmp_path, landcover={"path": str(big_sample)}, output={"dir": str(out), "tables": ["csv", "parquet"]})
    reference = dict(now, output={"dir": str(tmp_path / "reference"), "tables": ["csv", "parquet"]})
    for name, cfg in (("earlier", earlier), ("now", now), ("reference", reference)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    lucr_exe = str(Path(sys.executable).parent / "lucr")
    for name in ("earlier", "reference"):
        assert subprocess.run([lucr_exe, "run", str(tmp_path / f"{name}.yaml"), "--quiet", "--chunks", "256"], capture_output=True).returncode == 0
    before = {p.name: _digest(p) for p in out.iterdir() if p.is_file() and p.name != ".lucr-lock"}
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE, where, str(tmp_path / "now.yaml")], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    after = {p.name: _digest(p) for p in out.iterdir() if p.is_file() and p.name != ".lucr-lock"}
    assert after == before  # the earlier set, complete and unchanged
    assert [p.name for p in out.iterdir() if p.is_dir()], "expected the killed run's staging folder"
    rerun = subprocess.run([lucr_exe, "run", str(tmp_path / "now.yaml"), "--quiet", "--overwrite", "--chunks", "256"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not [p.name for p in out.iterdir() if p.is_dir()]  # the killed run's staging folder removed
    ref = {p.name: _digest(p) for p in (tmp_path / "reference").iterdir()}
    for name in ref:
        if name.endswith((".csv", ".parquet")):
            assert _digest(out / name) == ref[name], name
    _assert_same_map(out / "carbon_balance.tif", tmp_path / "reference" / "carbon_balance.tif")
    assert {p.name for p in out.iterdir() if p.name != ".lucr-lock"} == set(ref)


def _assert_same_map(a, b):
    """Pixel-identical at every level, same tags (tile order in the file may differ: blocks are written as they finish)."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        assert x.tags() == y.tags() and x.overviews(1) == y.overviews(1)
        np.testing.assert_array_equal(x.read(), y.read())
        for f in x.overviews(1):
            shape = (x.count, x.height // f, x.width // f)
            np.testing.assert_array_equal(x.read(out_shape=shape), y.read(out_shape=shape))

"""Identical tables and bit-identical maps whatever the chunking or the scheduler."""

import os
import platform

import numpy as np
import pandas as pd
import pytest
import rasterio

from lucr.runner import run


def _read_map(path):
    """Full resolution and every overview level, as bit patterns (NaN == NaN)."""
    levels = []
    with rasterio.open(path) as src:
        levels.append(src.read().view(np.uint32))
        for ovr in range(len(src.overviews(1))):
            with rasterio.open(path, overview_level=ovr) as level:
                levels.append(level.read().view(np.uint32))
    return levels


def _assert_same(a, b):
    maps_a, maps_b = _read_map(a.out_dir / "carbon_balance.tif"), _read_map(b.out_dir / "carbon_balance.tif")
    assert len(maps_a) == len(maps_b) == 3  # full resolution + 2 overviews
    assert all(np.array_equal(x, y) for x, y in zip(maps_a, maps_b))
    for level in a.tables:
        pd.testing.assert_frame_equal(a.tables[level].drop(columns="geometry"), b.tables[level].drop(columns="geometry"), check_exact=True)
    for key in ("inside_units", "whole_raster", "outside_units"):
        assert a.summary[key] == b.summary[key], key


@pytest.mark.parametrize("chunks", [256, 1024, 100_000])
def test_chunking_does_not_change_results(exact_run, sample_config, tmp_path, chunks):
    """The default (exact) engine: boundary fractions are computed per row from whole polygons."""
    other = run(sample_config, out_dir=tmp_path, chunks=chunks)
    assert other.summary["chunks"] != exact_run.summary["chunks"] or chunks == 100_000
    _assert_same(exact_run, other)


def test_chunking_does_not_change_fast_engine_results(fast_run, sample_config, tmp_path):
    other = run(sample_config, out_dir=tmp_path, chunks=256, engine="fast")
    _assert_same(fast_run, other)


@pytest.mark.parametrize("chunks", [512, 1024])
def test_distributed_localcluster_equals_threads(exact_run, sample_config, tmp_path, chunks):
    """2 worker processes. 1024: every full-resolution and 2x block starts on a 512 tile, so
    workers write tile parts without a lock; 512: the 2x and 4x blocks do not (reopen under a lock)."""
    from distributed import LocalCluster

    import io
    import re

    from rich.console import Console

    from lucr.report import dask_progress

    shown = io.StringIO()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        other = run(sample_config, out_dir=tmp_path, scheduler_address=cluster.scheduler_address, chunks=chunks,
                    progress=lambda: dask_progress(Console(file=shown, width=80)))
    _assert_same(exact_run, other)
    done = re.findall(r"(\d+)/(\d+) tasks", shown.getvalue())
    assert done and done[-1][0] == done[-1][1] and int(done[-1][1]) > 10, shown.getvalue()  # the bar advanced on the cluster
    if chunks == 1024:  # full-resolution tiles encoded as the local run encodes them (ZSTD level 1)
        from lucr.cog import read_levels

        local, distributed = (read_levels(r.out_dir / "carbon_balance.tif", dataset_tags=False)[0] for r in (exact_run, other))
        assert abs(int(distributed.byte_counts.sum()) / int(local.byte_counts.sum()) - 1) < 1e-3
        assert not list(tmp_path.glob(".lucr-staging*")) and not list(tmp_path.glob("*.parts"))


def test_dask_workers_reuse_freed_memory_during_the_run_only():
    """dask's nanny sets MALLOC_TRIM_THRESHOLD_: lucr raises glibc's thresholds for the run and puts them back."""
    import subprocess
    import sys

    from lucr.malloc import restore_this_process, return_freed_memory, tune_this_process

    probe = "from lucr.malloc import tune_this_process as t, restore_this_process as r; print(t(), r())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    as_worker = subprocess.run([sys.executable, "-c", probe], env={**env, "MALLOC_TRIM_THRESHOLD_": "65536"}, capture_output=True, text=True, check=True)
    plain = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    glibc = platform.libc_ver()[0] == "glibc"
    assert as_worker.stdout.split() == ([str(glibc)] * 2)  # tuned and restored where glibc runs
    assert plain.stdout.split() == ["False", "False"]  # thresholds nobody set are left alone
    assert return_freed_memory() in ((True, False) if glibc else (False,))  # whether pages went back: either, with glibc
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        assert (tune_this_process(), restore_this_process()) == (False, False)

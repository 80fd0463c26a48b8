"""The pass on a cluster: windows in batches, one task each (sizes, results, progress, cancelling)."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from lucr.area import fixed_point_scale_bits, row_cell_area_ha
from lucr.chunk import ChunkLayers
from lucr.grid import Grid
from lucr.sweep import PassSources, Sweep, batch_sizes, compute
from tests.test_projected import inputs as albers  # noqa: F401  (a projected grid of 2600 x 3100 cells and 3 units)


class ClassAreaAndWindows:
    """Area (ha) per class, and how many times each window was seen (each must be seen once)."""

    name = "class-area-and-windows"
    order_free = True  # so that it runs in batches (its float areas are compared with a tolerance)

    def chunk(self, chunk):
        area = np.zeros(3)
        np.add.at(area, chunk.codes[2019].ravel(), np.repeat(chunk.row_area_ha, chunk.shape[1]))
        return area, Counter({(int(chunk.window.row_off), int(chunk.window.col_off)): 1})

    def combine(self, parts):
        return sum(p[0] for p in parts), sum((p[1] for p in parts), Counter())

    def finalize(self, total):
        return total


def _sweep(height: int = 6, width: int = 5, chunks: tuple[int, int] = (4, 2)) -> tuple[Sweep, np.ndarray]:
    grid = Grid(height, width, Affine(30, 0, 0, 0, -30, 180), CRS.from_epsg(6933))
    codes = (np.arange(height * width, dtype=np.uint8).reshape(height, width) * 7) % 3
    layers = ChunkLayers(grid, None, fixed_point_scale_bits(grid, row_cell_area_ha(grid)))
    return Sweep(PassSources({2019: da.from_array(codes, chunks=chunks)}), layers), codes


def test_batch_sizes_shrink_to_single_windows():
    # by hand: 252 windows, 2 threads: ceil(remaining / 4) each time, at most 32 (or 1000)
    assert batch_sizes(252, 2, most=1000) == [63, 48, 36, 27, 20, 15, 11, 8, 6, 5, 4, 3, 2, 1, 1, 1, 1]
    assert batch_sizes(252, 2) == [32, 32, 32, 32, 31, 24, 18, 13, 10, 7, 6, 4, 3, 2, 2, 1, 1, 1, 1]
    assert batch_sizes(6, 1) == [3, 2, 1]
    assert batch_sizes(3, 64) == [1, 1, 1]  # more threads than windows: one window each
    assert batch_sizes(5, 0) == batch_sizes(5, 1)
    assert batch_sizes(0, 2) == []


@pytest.mark.parametrize("height", [6, 7])  # 6 or 7 windows of one row: batches of 3, 2, 1 or 4, 2, 1 on one thread
def test_batched_graph_gives_the_per_chunk_graphs_totals(height):
    """Same totals, every window once, on local threads and on an in-process cluster; the
    windows of a batch merged in pairs and the pairs' leftovers merged at its end."""
    from distributed import Client, LocalCluster

    from lucr.legend import ClassColumns
    from lucr.products.zone_class_area import ZoneClassArea

    sweep, codes = _sweep(height, 5, (1, 5))
    columns = ClassColumns.build(np.array([0, 1, 2]), (None,), np.dtype("uint8"))
    cross_tab = ZoneClassArea(2019, columns, 0)  # fixed point: the same bits whatever the grouping
    expected = np.array([(codes == k).sum() * 0.09 for k in range(3)])
    (per_chunk,) = dask.compute(sweep.fused([ClassAreaAndWindows(), cross_tab], [], build=True))
    assert batch_sizes(height, 1) == ([3, 2, 1] if height == 6 else [4, 2, 1])
    results = [dask.compute(sweep.batched([ClassAreaAndWindows(), cross_tab], [], threads=t))[0] for t in (1, 2)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        results.append(client.compute(sweep.batched([ClassAreaAndWindows(), cross_tab], [], threads=1)).result())
    windows = Counter({(w.row_off, w.col_off): 1 for w in sweep.windows.values()})
    assert len(windows) == height
    for (area, seen), (area_fx, code_count) in [per_chunk, *results]:
        np.testing.assert_allclose(area, expected, rtol=1e-12)
        assert seen == windows  # every window once
        assert np.array_equal(area_fx, per_chunk[1][0]) and np.array_equal(code_count, per_chunk[1][1])


def test_float_sums_are_not_combined_in_batches():
    """Their last bits would depend on the batches: a cluster then runs the per-chunk graph, as local threads do."""
    sweep, _ = _sweep()

    class FloatSums(ClassAreaAndWindows):
        name, order_free = "float-sums", False

    with pytest.raises(ValueError, match="float-sums"):
        sweep.batched([ClassAreaAndWindows(), FloatSums()], [], threads=2)


def test_progress_bar_counts_the_chunks_of_a_batched_pass():
    """Every window done moves the bar by one, as the workers report it (not only at the end)."""
    from contextlib import contextmanager

    from distributed import Client, LocalCluster
    from rich.console import Console
    from rich.progress import Progress

    from lucr.report import PassProgress

    sweep, _ = _sweep(8, 6, (2, 2))  # 12 windows
    completed: list = []

    class Recorded(Progress):
        def update(self, task_id, **kwargs):
            if "completed" in kwargs:
                completed.append(kwargs["completed"])
            super().update(task_id, **kwargs)

    @contextmanager
    def bar():
        with Recorded(console=Console(file=io.StringIO())) as progress:
            yield PassProgress(progress, progress.add_task("pass", total=None, unit="tasks"))

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        compute({"t": sweep.batched([ClassAreaAndWindows()], [], threads=2)}, client=client, progress=bar, steps=(sweep.progress_topic, len(sweep.windows)))
        deadline = time.monotonic() + 10
        while completed[-1] < 12 and time.monotonic() < deadline:  # the last events may follow the result
            time.sleep(0.02)
    assert completed == list(range(13)), completed  # 0, then one step per window


GATE = threading.Event()  # the second window of the test below waits for it (an in-process worker)


class HeldAtSecondWindow(ClassAreaAndWindows):
    name = "held-at-second-window"

    def chunk(self, chunk):
        if chunk.window.row_off == 2 and chunk.window.col_off == 0:
            assert GATE.wait(30)
        return super().chunk(chunk)


def test_a_cancelled_batch_stops_before_its_next_window():
    """A failed pass cancels its tasks: a batch ends after the window in progress, not after all of its windows."""
    from distributed import Client, LocalCluster

    sweep, _ = _sweep(12, 2, (2, 2))  # 6 windows of one column; 1 thread: batches of 3, 2, 1
    done: list = []
    first = threading.Event()

    def on_window(event):
        done.append(event[1])
        first.set()

    def batch_states(dask_worker):
        return [ts.state for ts in dask_worker.state.tasks.values() if "lucr-batch" in str(ts.key) and "combine" not in str(ts.key)]

    GATE.clear()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        client.subscribe_topic(sweep.progress_topic, on_window)
        future = client.compute(sweep.batched([HeldAtSecondWindow()], [], threads=1))
        assert first.wait(30)  # the first window is done; the second waits at the gate
        client.cancel([future])
        deadline = time.monotonic() + 30
        while "cancelled" not in next(iter(client.run(batch_states).values())):  # the worker knows
            assert time.monotonic() < deadline
            time.sleep(0.02)
        GATE.set()  # the second window ends; the third must not start
        while any(client.run(lambda dask_worker: len(dask_worker.state.executing)).values()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # any event still on its way
    assert done == [0, 1], done  # without the check the batch would go on to window 2


def test_a_run_on_a_cluster_in_batches_equals_local_threads(albers, tmp_path):
    """2600 x 3100 cells in 2048 chunks: 4 windows, every map level's blocks on tiles, so the
    cluster runs the pass in batches; tables, maps and the byte size of the map are the local run's;
    no part file or temporary is left."""
    from distributed import LocalCluster
    from rich.console import Console

    from lucr.report import dask_progress
    from tests.test_invariance import _read_map

    d, _ = albers
    local = _albers_run(d, tmp_path / "local")
    shown = io.StringIO()
    # one worker process with one thread: batches of 2, 1, 1 windows (reads and merges in a worker process)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        other = _albers_run(d, tmp_path / "cluster", scheduler_address=cluster.scheduler_address, progress=lambda: dask_progress(Console(file=shown, width=80)))
    assert re.findall(r"(\d+)/(\d+) chunks", shown.getvalue())[-1] == ("4", "4"), shown.getvalue()  # the batched graph ran
    pd.testing.assert_frame_equal(local.tables["unit"].drop(columns="geometry"), other.tables["unit"].drop(columns="geometry"), check_exact=True)
    maps = [_read_map(r.out_dir / "carbon_balance.tif") for r in (local, other)]
    assert len(maps[0]) == len(maps[1]) >= 3 and all(np.array_equal(a, b) for a, b in zip(*maps))
    assert (local.out_dir / "carbon_balance.tif").stat().st_size == (other.out_dir / "carbon_balance.tif").stat().st_size
    assert not list(other.out_dir.glob(".lucr-staging*")) and not list(other.out_dir.glob("*.parts"))


def _albers_run(d, out, flux_raster=None, **kwargs):
    from lucr.config import parse_config
    from lucr.runner import run

    cfg = parse_config({"landcover": {"path": "lc.tif"}, "legend": "clcd", "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid", "name": "label"}],
                        "output": {"map_extent": "raster", "tables": ["csv"], "report": False}, "risk": None,
                        **({"flux_raster": flux_raster} if flux_raster else {})}, d)
    return run(cfg, out_dir=out, chunks=2048, **kwargs)


def test_a_run_with_float_sums_keeps_one_task_per_chunk_on_a_cluster(albers, tmp_path):
    """A flux raster's sums are floats: the cluster runs the per-chunk graph, whose combine tree is
    local threads' own, so the tables keep the same bits (batches would group the sums otherwise)."""
    import rasterio
    from distributed import LocalCluster
    from rich.console import Console

    from lucr.report import dask_progress

    d, codes = albers
    rng = np.random.default_rng(3)
    with rasterio.open(d / "lc.tif") as src:
        profile = {**src.profile, "dtype": "float32", "nodata": None}
    nep = rng.normal(0.0, 2.0, codes.shape).astype(np.float32)  # t C / ha / yr, the digits of every cell different
    with rasterio.open(tmp_path / "nep.tif", "w", **profile) as dst:
        dst.write(nep, 1)
    extra = {"flux_raster": {"path": str(tmp_path / "nep.tif")}}
    local = _albers_run(d, tmp_path / "local", **extra)
    shown = io.StringIO()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        other = _albers_run(d, tmp_path / "cluster", scheduler_address=cluster.scheduler_address, progress=lambda: dask_progress(Console(file=shown, width=80)), **extra)
    assert re.findall(r"\d+/\d+ (tasks|chunks)", shown.getvalue())[-1] == "tasks", shown.getvalue()  # the per-chunk graph
    pd.testing.assert_frame_equal(local.tables["unit"].drop(columns="geometry"), other.tables["unit"].drop(columns="geometry"), check_exact=True)
    assert local.tables["unit"]["net_tc"].abs().sum() > 0

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

    def __init__(self, seconds_per_chunk: float = 0.0):
        self.seconds_per_chunk = seconds_per_chunk

    def chunk(self, chunk):
        time.sleep(self.seconds_per_chunk)
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
    # by hand: 252 windows, 2 threads: ceil(remaining / 4) each time
    assert batch_sizes(252, 2) == [63, 48, 36, 27, 20, 15, 11, 8, 6, 5, 4, 3, 2, 1, 1, 1, 1]
    assert batch_sizes(6, 1) == [3, 2, 1]
    assert batch_sizes(3, 64) == [1, 1, 1]  # more threads than windows: one window each
    assert batch_sizes(5, 0) == batch_sizes(5, 1)
    assert batch_sizes(0, 2) == []


def test_batched_graph_gives_the_per_chunk_graphs_totals():
    """Same totals, every window once, on local threads and on an in-process cluster."""
    from distributed import Client, LocalCluster

    sweep, codes = _sweep()
    expected = np.array([(codes == k).sum() * 0.09 for k in range(3)])
    (per_chunk,) = dask.compute(sweep.fused([ClassAreaAndWindows()], [], build=True))
    (batched,) = dask.compute(sweep.batched([ClassAreaAndWindows()], [], threads=2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        (on_cluster,) = client.compute(sweep.batched([ClassAreaAndWindows()], [], threads=2)).result()
    for (area, seen) in (per_chunk[0], batched[0], on_cluster):
        np.testing.assert_allclose(area, expected, rtol=1e-12)
        assert seen == Counter({(w.row_off, w.col_off): 1 for w in sweep.windows.values()})  # 6 windows, each once


def test_float_sums_are_not_combined_in_batches():
    """Their last bits would depend on the batches: a cluster then runs the per-chunk graph, as local threads do."""
    sweep, _ = _sweep()

    class FloatSums(ClassAreaAndWindows):
        name, order_free = "float-sums", False

    with pytest.raises(ValueError, match="float-sums"):
        sweep.batched([ClassAreaAndWindows(), FloatSums()], [], threads=2)


def test_progress_bar_counts_the_chunks_of_a_batched_pass():
    from distributed import Client, LocalCluster
    from rich.console import Console

    from lucr.report import dask_progress

    sweep, _ = _sweep(8, 6, (2, 2))  # 12 windows
    shown = io.StringIO()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        compute({"t": sweep.batched([ClassAreaAndWindows(0.05)], [], threads=2)}, client=client,
                progress=lambda: dask_progress(Console(file=shown, width=80, force_terminal=True)), steps=(sweep.progress_topic, len(sweep.windows)))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.getvalue())  # the terminal's colours and cursor moves
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) chunks", text)]
    assert counts and counts[-1] == (12, 12), text
    assert any(0 < done < 12 for done, _ in counts), text  # it advanced during the pass, not only at its end


def test_a_cancelled_batch_stops_before_its_next_window():
    """A failed pass cancels its tasks: a batch ends after the window in progress, not after all of its windows."""
    from distributed import Client, LocalCluster

    sweep, _ = _sweep(8, 6, (2, 2))  # 12 windows; 1 thread: batches of 6, 3, 2, 1
    done: list = []
    first = threading.Event()

    def on_window(event):
        done.append(event)
        first.set()

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        client.subscribe_topic(sweep.progress_topic, on_window)
        future = client.compute(sweep.batched([ClassAreaAndWindows(0.3)], [], threads=1))
        assert first.wait(30)
        client.cancel([future])
        deadline = time.monotonic() + 30
        while client.run(lambda dask_worker: len(dask_worker.state.executing)) != {a: 0 for a in client.scheduler_info()["workers"]}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # any event still on its way
    assert 1 <= len(done) <= 3, done  # the first batch has 6 windows: it stopped after the one in progress


def test_a_run_on_a_cluster_in_batches_equals_local_threads(albers, tmp_path):
    """2600 x 3100 cells in 2048 chunks: 4 windows, every map level's blocks on tiles, so the
    cluster runs the pass in batches; tables, maps and the byte size of the map are the local run's."""
    from distributed import LocalCluster
    from rich.console import Console

    from lucr.report import dask_progress
    from tests.test_invariance import _read_map

    d, _ = albers
    local = _albers_run(d, tmp_path / "local")
    shown = io.StringIO()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        other = _albers_run(d, tmp_path / "cluster", scheduler_address=cluster.scheduler_address, progress=lambda: dask_progress(Console(file=shown, width=80)))
    assert re.findall(r"(\d+)/(\d+) chunks", shown.getvalue())[-1] == ("4", "4"), shown.getvalue()  # the batched graph ran
    pd.testing.assert_frame_equal(local.tables["unit"].drop(columns="geometry"), other.tables["unit"].drop(columns="geometry"), check_exact=True)
    maps = [_read_map(r.out_dir / "carbon_balance.tif") for r in (local, other)]
    assert len(maps[0]) == len(maps[1]) >= 3 and all(np.array_equal(a, b) for a, b in zip(*maps))
    assert (local.out_dir / "carbon_balance.tif").stat().st_size == (other.out_dir / "carbon_balance.tif").stat().st_size
    assert not list(other.out_dir.glob(".lucr-staging*")) and not list(other.out_dir.glob("*.parts"))


def _albers_run(d, out, **kwargs):
    from lucr.config import parse_config
    from lucr.runner import run

    cfg = parse_config({"landcover": {"path": "lc.tif"}, "legend": "clcd", "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid", "name": "label"}],
                        "output": {"map_extent": "raster", "tables": ["csv"], "report": False}, "risk": None}, d)
    return run(cfg, out_dir=out, chunks=2048, **kwargs)

"""After a failed chunk, no write of the pass outlives the staging folder that is removed next."""

import logging
import os
import threading
import time

import numpy as np
import pytest
import rasterio
from affine import Affine

from lucr.export import TilePartsWriter


def test_tile_parts_writer_close_waits_for_the_write_in_progress(tmp_path):
    profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "deflate", "zlevel": 9, "predictor": 1, "transform": Affine(30, 0, 0, 0, -30, 0)}
    writer = TilePartsWriter(tmp_path / "map.tif", profile)
    block = np.random.default_rng(1).random((1, 4096, 4096), dtype=np.float32)  # ~1 s of DEFLATE level 9
    thread = threading.Thread(target=writer.__setitem__, args=((slice(None), slice(0, 4096), slice(0, 4096)), block))
    thread.start()
    while writer.writing == 0 and thread.is_alive():
        time.sleep(0.001)
    assert writer.writing == 1  # the write is in progress
    assert writer.close() is True  # returns once it is done
    assert writer.writing == 0
    with rasterio.open(tmp_path / "map.tif.parts" / "0_0.tif") as part:  # complete, not cut short
        assert np.array_equal(part.read(), block)
    with pytest.raises(RuntimeError, match="the run is over"):
        writer[(slice(None), slice(4096, 4608), slice(0, 512))] = block[:, :512, :512]
    assert sorted(p.name for p in (tmp_path / "map.tif.parts").iterdir()) == ["0_0.tif"]
    thread.join()


def _late_write(path, release):
    while not os.path.exists(release):  # held until the test lets it go, after the pass failed
        time.sleep(0.01)
    with open(path, "w") as f:
        f.write("a tile part")
    return 1


def _failing_chunk(marker):
    open(marker, "w").close()
    raise ValueError("a chunk failed")


@pytest.mark.timeout(120)
def test_failed_pass_on_a_cluster_waits_for_the_tasks_still_running(tmp_path, caplog):
    """The scheduler forgets cancelled tasks at once; the workers still run them until they end."""
    import dask
    from distributed import Client, LocalCluster

    from lucr.sweep import compute

    caplog.set_level(logging.INFO, logger="lucr.sweep")
    late, release, failed = tmp_path / "late.tif", tmp_path / "release", tmp_path / "failed"

    def let_go():  # the late write may end 0.5 s after the failure reached the workers
        for _ in range(6000):
            if failed.exists():
                break
            time.sleep(0.01)
        time.sleep(0.5)
        release.touch()

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
        first, second = sorted(client.scheduler_info()["workers"])
        with dask.annotate(workers=[first], allow_other_workers=False):  # one task per worker: both run at once
            late_task = dask.delayed(_late_write)(str(late), str(release))
        with dask.annotate(workers=[second], allow_other_workers=False):
            failing_task = dask.delayed(_failing_chunk)(str(failed))
        targets = {"late": late_task, "fails": failing_task}
        helper = threading.Thread(target=let_go, daemon=True)
        helper.start()
        with pytest.raises(ValueError, match="a chunk failed"):
            compute(targets, client=client)
        assert late.exists()  # compute waited for the late write before raising
        assert "waiting for 1 task(s) of the failed pass" in caplog.text  # said, not a silent pause
        helper.join()

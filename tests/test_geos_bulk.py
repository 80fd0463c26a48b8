"""Bulk GEOS work: predicates over threads (the same answers as one call, prepared geometries never
shared), geometries made with the cyclic GC paused."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from lucr import geos_bulk
from lucr.geos_bulk import geometries_from_wkb, split_rows, threaded


def test_slices_keep_each_group_whole_and_cover_every_row(monkeypatch):
    monkeypatch.setattr(geos_bulk, "MIN_ROWS_PER_THREAD", 10)
    groups = np.repeat(np.arange(7), [3, 40, 1, 25, 30, 2, 19])  # 120 rows
    bounds = split_rows(len(groups), 4, groups)
    assert bounds[0] == 0 and bounds[-1] == len(groups) and np.all(np.diff(bounds) > 0)
    assert len(bounds) > 2  # split at all
    for cut in bounds[1:-1]:
        assert groups[cut - 1] != groups[cut]  # no group on both sides of a cut
    assert split_rows(120, 4, np.zeros(120, np.int64)).tolist() == [0, 120]  # one group: one slice
    assert split_rows(25, 8).tolist() == [0, 12, 25]  # at least MIN_ROWS_PER_THREAD rows each
    assert split_rows(5, 8).tolist() == [0, 5]
    with pytest.raises(ValueError, match="groups must be sorted"):
        split_rows(len(groups), 4, groups[::-1])


def test_threaded_predicates_equal_one_call(monkeypatch):
    monkeypatch.setattr(geos_bulk, "MIN_ROWS_PER_THREAD", 50)
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 100, (2, 400))
    boxes = shapely.box(x, y, x + rng.uniform(0.5, 3, 400), y + rng.uniform(0.5, 3, 400))
    bowties = shapely.polygons([[(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)]] * 50)  # self-intersecting: invalid
    polygons = np.concatenate([boxes, bowties])[rng.permutation(450)]
    assert threaded(shapely.is_valid, polygons, threads=3).tolist() == shapely.is_valid(polygons).tolist()

    parents = shapely.box(np.arange(0, 100, 10.0), 0, np.arange(10, 110, 10.0), 110)
    shapely.prepare(parents)
    parent_of = np.clip((x // 10).astype(np.int64) + rng.integers(0, 2, 400), 0, 9)  # some children in the wrong parent
    order = np.argsort(parent_of, kind="stable")
    got = threaded(shapely.covers, parents[parent_of[order]], boxes[order], groups=parent_of[order], threads=4)
    assert got.tolist() == shapely.covers(parents[parent_of[order]], boxes[order]).tolist()
    assert 0 < got.sum() < len(got)


def test_geometries_from_wkb_set_off_no_collection_and_give_the_collector_back():
    import gc

    wkb = shapely.to_wkb(shapely.box(np.arange(20_000.0), 0, np.arange(20_000.0) + 1, 1))
    collections = []
    callback = lambda phase, info: collections.append(info["generation"]) if phase == "start" else None  # noqa: E731
    gc.callbacks.append(callback)
    try:
        assert gc.isenabled()
        shapely.from_wkb(wkb)
        assert len(collections) > 5  # 20,000 tracked objects made: the collector runs, unless paused
        collections.clear()
        made = geometries_from_wkb(wkb)
        assert len(collections) <= 1 and gc.isenabled()  # at most one, once the collector is back
        assert shapely.equals_exact(made, shapely.from_wkb(wkb), tolerance=0).all()
        with pytest.raises(shapely.errors.GEOSException):
            geometries_from_wkb(np.array([b"\x01\x03\x00"], dtype=object))
        assert gc.isenabled()  # given back after an error too
        gc.disable()
        geometries_from_wkb(wkb[:10])
        assert not gc.isenabled()  # a caller's paused collector stays paused
    finally:
        gc.enable()
        gc.callbacks.remove(callback)

"""The single pass over every date and layer: reads counted, products declared, results by name."""

from __future__ import annotations

import threading
from collections import Counter
from functools import partial

import numpy as np
import pytest
import rasterio
from rasterio.io import DatasetReader
from rio_cogeo.cogeo import cog_validate

from lucr.config import parse_config
from lucr.products import MapProduct, registry
from lucr.products.base import RunContext
from lucr.runner import run
from tests.conftest import SAMPLE_PROVINCES, SAMPLE_RASTER

CROPLAND, URBAN = 12, 13


@pytest.fixture(scope="module")
def two_dates(tmp_path_factory):
    """The real 2019 sample and a later date in which cropland next to built-up land became built-up."""
    d = tmp_path_factory.mktemp("dates")
    with rasterio.open(SAMPLE_RASTER) as src:
        codes, profile = src.read(1), src.profile
    later = codes.copy()
    near_urban = np.zeros_like(codes, dtype=bool)
    urban = codes == URBAN
    near_urban[1:, :] |= urban[:-1, :]
    near_urban[:-1, :] |= urban[1:, :]
    later[near_urban & (codes == CROPLAND)] = URBAN
    paths = {}
    for year, data in ((2019, codes), (2020, later)):
        paths[year] = d / f"lc_{year}.tif"
        with rasterio.open(paths[year], "w", **profile) as dst:
            dst.write(data, 1)
    return paths, codes, later


def _config(paths, tmp_path, **extra):
    zones = [{"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"}]
    years = {y: str(p) for y, p in paths.items()}
    return parse_config({"landcover": {"years": years}, "legend": "igbp", "zones": zones, "chunks": 512, "output": {"dir": str(tmp_path / "out"), "tables": ["csv"], "map_extent": "raster"}, **extra}, tmp_path)


@pytest.fixture
def counted_reads(monkeypatch):
    """Every ``DatasetReader.read`` of the run: (file name, window) -> count (thread-safe)."""
    reads: Counter = Counter()
    lock = threading.Lock()
    original = DatasetReader.read

    def counting(self, *args, **kwargs):
        window = kwargs.get("window")
        ranges = window.toranges() if hasattr(window, "toranges") else window  # rioxarray passes ((r0, r1), (c0, c1))
        key = (self.name.rsplit("/", 1)[-1], None if ranges is None else tuple(tuple(map(int, r)) for r in ranges))
        with lock:
            reads[key] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DatasetReader, "read", counting)
    return reads


def test_two_dates_are_read_once_each_chunk_in_one_pass(two_dates, tmp_path, counted_reads):
    paths, codes, later = two_dates
    result = run(_config(paths, tmp_path))
    # 1016 x 1253 cells in 512-cell chunks (whole 256 tiles): 2 x 3 windows per date
    windows = {(f, w) for (f, w) in counted_reads if f.startswith("lc_")}
    assert {f for f, _ in windows} == {"lc_2019.tif", "lc_2020.tif"}
    assert sum(1 for f, _ in windows if f == "lc_2019.tif") == 6
    assert all(counted_reads[k] == 1 for k in windows), {k: counted_reads[k] for k in windows if counted_reads[k] != 1}
    # the one pass served both dates: maps and tables of each differ only where land changed
    with rasterio.open(result.maps["carbon_balance_2019"]) as a, rasterio.open(result.maps["carbon_balance_2020"]) as b:
        net_a, net_b = a.read(3), b.read(3)
    changed = later != codes
    assert changed.sum() > 100
    np.testing.assert_array_equal(net_a[~changed], net_b[~changed])
    assert np.allclose(net_b[changed], 55.8) and np.allclose(net_a[changed], 0.422)
    t19, t20 = (result.by_year[y].tables["province"].set_index("unit_id") for y in (2019, 2020))
    grew = (t20[f"area_ha_class_{URBAN}"] - t19[f"area_ha_class_{URBAN}"])
    lost = (t19[f"area_ha_class_{CROPLAND}"] - t20[f"area_ha_class_{CROPLAND}"])
    np.testing.assert_allclose(grew, lost, rtol=0, atol=1e-6)
    assert (grew > 0).sum() > 10
    assert set(result.reductions) == {"zone-class-area-2019", "zone-class-area-2020"}


# -- a made-up extra map product and reduction, each one module-level declaration -------

CLASS_COLOURS = {0: (0, 0, 255, 255), 1: (0, 128, 0, 255), 2: (255, 0, 0, 255), 255: (0, 0, 0, 0)}


def _changed_block(chunk, first, last):
    """uint8 change map: 0 no data, 1 unchanged, 2 changed class (255 outside every date)."""
    a, b = chunk.codes[first], chunk.codes[last]
    out = np.where(a == b, 1, 2).astype(np.uint8)
    out[(a == 255) | (b == 255)] = 0
    return out[None]


def declare_change_map(ctx: RunContext) -> list[MapProduct]:
    first, last = ctx.dates[0].year, ctx.dates[-1].year
    return [MapProduct(name="changed", bands=("changed",), dtype="uint8", nodata=255, units="class",
                       block=partial(_changed_block, first=first, last=last), colormap=CLASS_COLOURS)]


class ChangedCells:
    """Reduction: cells whose class differs between the first and last date, and the cells seen."""

    name = "changed-cells"

    def __init__(self, first, last):
        self.first, self.last = first, last

    def chunk(self, chunk):
        return int((chunk.codes[self.first] != chunk.codes[self.last]).sum()), chunk.codes[self.first].size

    def combine(self, parts):
        return tuple(map(sum, zip(*parts)))

    def finalize(self, total):
        return {"changed": total[0], "cells": total[1]}

    def summary(self, total):
        return total


def declare_changed_cells(ctx: RunContext) -> list:
    return [ChangedCells(ctx.dates[0].year, ctx.dates[-1].year)]


def test_extra_products_plug_in_with_one_registration(two_dates, tmp_path, monkeypatch, counted_reads):
    paths, codes, later = two_dates
    monkeypatch.setattr(registry, "MAP_PRODUCTS", [*registry.MAP_PRODUCTS, declare_change_map])
    monkeypatch.setattr(registry, "REDUCTIONS", [*registry.REDUCTIONS, declare_changed_cells])
    result = run(_config(paths, tmp_path))
    assert all(n == 1 for (f, _), n in counted_reads.items() if f.startswith("lc_"))  # still one read per chunk
    assert result.reductions["changed-cells"] == {"changed": int((later != codes).sum()), "cells": codes.size}
    assert result.by_year[2019].summary["reductions"]["changed-cells"]["changed"] == int((later != codes).sum())
    path = result.maps["changed"]
    assert path.name == "changed.tif" and cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and src.descriptions == ("changed",)
        assert src.colormap(1)[2] == (255, 0, 0, 255)
        expected = np.where(codes == later, 1, 2)
        expected[codes == 255] = 0
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.overviews(1) == [2, 4]
    with rasterio.open(path, overview_level=0) as ovr:  # the top-left cell of each 2 x 2 block, palette kept
        np.testing.assert_array_equal(ovr.read(1), expected[::2, ::2])
        assert ovr.colormap(1)[1] == (0, 128, 0, 255)


def test_declaring_a_name_twice_is_refused(two_dates, tmp_path, monkeypatch):
    paths, _, _ = two_dates
    monkeypatch.setattr(registry, "MAP_PRODUCTS", [*registry.MAP_PRODUCTS, declare_change_map, declare_change_map])
    with pytest.raises(ValueError, match=r"map product names declared twice: \['changed'\]"):
        run(_config(paths, tmp_path))


def test_sweep_hands_other_rasters_to_consumers_chunk_by_chunk():
    """A per-cell raster (e.g. a flux raster in place of a class coefficient) rides in the same chunks."""
    import dask
    import dask.array as da
    from affine import Affine
    from rasterio.crs import CRS

    from lucr.area import fixed_point_scale_bits, row_cell_area_ha
    from lucr.chunk import ChunkLayers
    from lucr.grid import Grid
    from lucr.sweep import PassSources, Sweep

    grid = Grid(6, 5, Affine(30, 0, 0, 0, -30, 180), CRS.from_epsg(6933))
    codes = np.arange(30, dtype=np.uint8).reshape(6, 5) % 3
    flux = np.linspace(-1, 2, 30).reshape(6, 5)

    class FluxByClass:  # t C per class: raster value x true cell area (0.09 ha)
        name = "flux-by-class"

        def chunk(self, chunk):
            out = np.zeros(3)
            np.add.at(out, chunk.codes[2019].ravel(), (chunk.rasters["flux"] * chunk.row_area_ha[:, None]).ravel())
            return out, chunk.window.row_off, chunk.window.col_off

        def combine(self, parts):
            return sum(p[0] for p in parts), None, None

        def finalize(self, total):
            return total[0]

    layers = ChunkLayers(grid, None, fixed_point_scale_bits(grid, row_cell_area_ha(grid)))
    sweep = Sweep(PassSources({2019: da.from_array(codes, chunks=(4, 2))}, {"flux": da.from_array(flux, chunks=(4, 2))}), layers)
    (total,) = dask.compute(sweep.reduce(FluxByClass()))
    expected = [flux[codes == k].sum() * 0.09 for k in range(3)]
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    assert len(sweep.windows) == 6  # 2 x 3 chunks


def test_decimated_levels_keep_the_cells_and_the_palette(tmp_path):
    """Levels below the streamed ones: the top-left cell of each f x f block (odd sizes, a partial last
    tile row), written with the source's palette."""
    from lucr.export import write_decimated

    rng = np.random.default_rng(2)
    data = rng.integers(0, 7, (1, 1100, 1303)).astype("uint8")
    src = tmp_path / "level4.tif"
    colormap = {i: (30 * i, 255 - 30 * i, 100, 255) for i in range(7)}
    with rasterio.open(src, "w", driver="GTiff", width=1303, height=1100, count=1, dtype="uint8", tiled=True,
                       blockxsize=512, blockysize=512, photometric="palette", transform=rasterio.Affine(4, 0, 0, 0, -4, 0)) as dst:
        dst.write(data)
        dst.write_colormap(1, colormap)
    paths = [tmp_path / f"x{f}.tif" for f in (2, 4, 3)]
    write_decimated(src, [2, 4, 3], paths, "zstd", is_float=False)
    for f, path in zip((2, 4, 3), paths):
        with rasterio.open(path) as level:
            assert level.shape == (-(-1100 // f), -(-1303 // f))
            np.testing.assert_array_equal(level.read(), data[:, ::f, ::f])
            assert level.colormap(1)[3] == colormap[3]


def test_sparse_partials_merge_to_the_sums_of_equal_keys():
    """``merge_sparse`` against a plain dictionary sum: runs of equal keys over sorted and unsorted
    parts, sums that cancel dropped, int64 values near the type's range kept exact."""
    from lucr.products.base import merge_sparse

    rng = np.random.default_rng(7)
    parts = [np.sort(rng.integers(0, 500, 300)) for _ in range(3)] + [rng.integers(0, 500, 300)]
    keys = np.concatenate(parts)
    values = rng.integers(-(1 << 52), 1 << 52, len(keys))
    values[keys == keys[0]] = 0  # a key whose values sum to zero
    expected: Counter = Counter()
    for k, v in zip(keys.tolist(), values.tolist()):
        expected[k] += v
    merged_keys, merged_values = merge_sparse(keys, values)
    assert merged_keys.tolist() == sorted(k for k, v in expected.items() if v != 0)
    assert merged_values.tolist() == [expected[k] for k in merged_keys.tolist()]
    assert merged_values.dtype == np.int64
    empty_keys, empty_values = merge_sparse(np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert len(empty_keys) == len(empty_values) == 0
    with pytest.raises(ValueError, match="3 keys and 4 values"):
        merge_sparse(np.arange(3), np.arange(4))

"""The exact engine: coverage-weighted class areas computed in the single pass.

Oracle (independent of lucr's kernel): exactextract lists every cell a unit covers with
its class code and coverage fraction; exactextract stores coverage fractions as float32
(measured: up to 5e-8 of a cell off), so the cells the unit's boundary touches get their
fraction recomputed here as the GEOS area of (cell box ∩ polygon) / cell area, in
float64. Weights are true cell areas computed here (planar for a projected grid, pyproj
geodesic for a geographic one).
"""

from __future__ import annotations

from contextlib import contextmanager

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from pyproj import CRS, Geod

from lucr.config import parse_config
from lucr.runner import run
from lucr.zonal import ZonePayload

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=WGS84 +units=m +no_defs"
REL = 1e-9


def row_area_ha(transform: Affine, height: int, crs) -> np.ndarray:
    """True area (ha) of one cell of each row, computed independently of lucr."""
    if not CRS.from_user_input(crs).is_geographic:
        return np.full(height, abs(transform.a * transform.e) / 1e4)
    geod = Geod(ellps="WGS84")
    lons = np.linspace(0, transform.a, 101)
    return np.array([
        abs(geod.polygon_area_perimeter(np.r_[lons, lons[::-1]], np.r_[np.full(101, transform.f + transform.e * (r + 1)), np.full(101, transform.f + transform.e * r)])[0]) / 1e4
        for r in range(height)
    ])


def coverage_weighted_class_areas(raster_path, units: gpd.GeoDataFrame, id_col: str) -> tuple[dict, dict]:
    """``{(unit, code): ha}`` by the oracle above, and by exactextract's float32 fractions as they are."""
    with rasterio.open(raster_path) as src:
        t, h, w, crs = src.transform, src.height, src.width, src.crs
        units = units.to_crs(crs)
        res = exact_extract(src, units, ["values", "coverage", "cell_id"], include_cols=[id_col], output="pandas")
    area = row_area_ha(t, h, crs)
    exact, as_is = {}, {}
    for geom, row in zip(units.geometry, res.itertuples()):
        values, cov, cell = np.asarray(getattr(row, "values")), np.asarray(row.coverage, np.float64), np.asarray(row.cell_id)
        r, c = np.divmod(cell, w)
        x0, y0 = t.c + t.a * c, t.f + t.e * r
        boxes = shapely.box(x0, y0 + t.e, x0 + t.a, y0)
        shapely.prepare(geom.boundary)
        edge = shapely.intersects(boxes, geom.boundary)
        fixed = cov.copy()
        fixed[edge] = shapely.area(shapely.intersection(boxes[edge], geom)) / abs(t.a * t.e)
        uid = getattr(row, id_col)
        for code in np.unique(values):
            sel = values == code
            exact[(uid, int(code))] = float((fixed[sel] * area[r[sel]]).sum())
            as_is[(uid, int(code))] = float((cov[sel] * area[r[sel]]).sum())
    return exact, as_is


def _units(bounds, crs, seed=3) -> gpd.GeoDataFrame:
    """Voronoi units over ``bounds`` grown 10 % past the raster on two sides, plus an island unit cut out of one."""
    left, bottom, right, top = bounds
    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(left, right, 25), rng.uniform(bottom, top, 25))
    extent = shapely.box(left, bottom, right + 0.1 * (right - left), top + 0.1 * (top - bottom))
    cells = [shapely.intersection(c, extent) for c in shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=extent))]
    island = shapely.Point(shapely.get_coordinates(shapely.centroid(cells[0]))[0]).buffer(0.04 * (right - left), quad_segs=7)
    cells[0] = cells[0].difference(island)  # a unit with a hole, filled by the island unit
    geoms = cells + [island]
    return gpd.GeoDataFrame({"uid": [f"u{i:02d}" for i in range(len(geoms))]}, geometry=geoms, crs=crs)


@pytest.fixture(scope="module", params=["albers_uint16", "lonlat_uint8"])
def case(request, tmp_path_factory):
    """A coarse grid (where cell-centre zones are visibly wrong) without a nodata value."""
    d = tmp_path_factory.mktemp(request.param)
    rng = np.random.default_rng(11)
    if request.param == "albers_uint16":
        crs, transform, h, w, dtype, codes = ALBERS, Affine(1000, 0, 400_000, 0, -1000, 3_200_000), 180, 260, "uint16", (100, 2000, 40000)
    else:
        crs, transform, h, w, dtype, codes = "EPSG:4326", Affine(0.02, 0, 100.0, 0, -0.02, 35.0), 150, 200, "uint8", (1, 2, 3)
    patches = rng.choice(np.array(codes, dtype=dtype), size=(h // 6 + 1, w // 6 + 1))
    grid = np.repeat(np.repeat(patches, 6, axis=0), 6, axis=1)[:h, :w]
    grid = np.where(rng.random((h, w)) < 0.2, rng.choice(np.array(codes, dtype=dtype), size=(h, w)), grid)
    with rasterio.open(d / "lc.tif", "w", driver="GTiff", width=w, height=h, count=1, dtype=dtype, crs=crs, transform=transform) as dst:
        dst.write(grid, 1)
    with rasterio.open(d / "lc.tif") as src:
        bounds = src.bounds
    units = _units(bounds, crs)
    units.to_file(d / "units.gpkg", layer="units")
    (d / "coefs.csv").write_text("code,name,coef,ref,status\n" + "".join(f"{c},class {c},{0.5 - k},test,literature_default\n" for k, c in enumerate(codes)))
    return d, units, codes


def _run(d, chunks):
    cfg = parse_config({
        "landcover": {"path": "lc.tif"}, "coefficients": "coefs.csv", "engine": "exact",
        "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid"}],
    }, d)
    return run(cfg, out_dir=d / f"out{chunks}", chunks=chunks, overwrite=True)


def test_exact_engine_equals_exactextract_with_exact_fractions(case):
    d, units, codes = case
    ours = _run(d, 64).tables["unit"].set_index("unit_id")
    exact, as_is = coverage_weighted_class_areas(d / "lc.tif", units, "uid")
    with rasterio.open(d / "lc.tif") as src:
        cell_ha = float(row_area_ha(src.transform, src.height, src.crs).max())
    worst = worst_as_is = 0.0
    for (uid, code), ref in exact.items():
        got = ours.loc[uid, f"area_ha_class_{code}"]
        assert got == pytest.approx(ref, rel=REL, abs=REL * cell_ha), (uid, code)
        worst = max(worst, abs(got - ref) / max(ref, cell_ha))
        worst_as_is = max(worst_as_is, abs(got - as_is[(uid, code)]) / max(ref, cell_ha))
    assert set(exact) == {(u, c) for u in ours.index for c in codes if ours.loc[u, f"area_ha_class_{c}"] > 0}
    print(f"\nexact engine vs exactextract + GEOS fractions: max rel {worst:.1e}; vs exactextract's float32 fractions: {worst_as_is:.1e}")
    assert worst_as_is < 1e-6  # exactextract as it is, to its float32 precision


def test_exact_engine_is_independent_of_chunking(case):
    d, _, _ = case
    a, b = _run(d, 64), _run(d, 100)
    pd.testing.assert_frame_equal(a.tables["unit"].drop(columns="geometry"), b.tables["unit"].drop(columns="geometry"), check_exact=True)


def test_exact_engine_in_row_strips_gives_the_same_bits(case, monkeypatch):
    """Boundary cells corrected a few rows at a time (``ZonePayload.STRIP_ROWS``, bounding the working
    memory with many units): the fixed-point tables and the map are those of whole windows, bit for
    bit; a flux raster's float sums add the same entries in another order (to 1e-12)."""
    d, _, _ = case
    with rasterio.open(d / "lc.tif") as src:
        profile = src.profile | {"dtype": "float32", "nodata": None}
        flux = np.random.default_rng(2).normal(0.0, 3.0, (src.height, src.width)).astype("float32")
    with rasterio.open(d / "flux.tif", "w", **profile) as dst:
        dst.write(flux, 1)

    def runs(strip_rows):
        monkeypatch.setattr(ZonePayload, "STRIP_ROWS", strip_rows)
        out = {}
        for name, extra in (("plain", {}), ("flux", {"flux_raster": {"path": "flux.tif"}})):
            cfg = parse_config({
                "landcover": {"path": "lc.tif"}, "coefficients": "coefs.csv", "engine": "exact",
                "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid"}], **extra,
            }, d)
            result = run(cfg, out_dir=d / f"strips{strip_rows}_{name}", chunks=100, overwrite=True)
            out[name] = result.tables["unit"].drop(columns="geometry")
        return out

    whole, strips = runs(256), runs(7)  # windows of 100 rows: one strip each; strips of 7 rows, polygons crossing many
    pd.testing.assert_frame_equal(whole["plain"], strips["plain"], check_exact=True)
    assert (whole["flux"]["flux_raster_area_ha"] > 0).any()
    pd.testing.assert_frame_equal(whole["flux"], strips["flux"], check_exact=False, rtol=1e-12, atol=1e-9)
    with rasterio.open(d / "strips256_plain" / "carbon_balance.tif") as a, rasterio.open(d / "strips7_plain" / "carbon_balance.tif") as b:
        assert np.array_equal(a.read(1), b.read(1), equal_nan=True)


def test_exact_engine_conserves_the_grid_and_beats_cell_centres(case):
    """Units plus the outside row equal the grid; the fast engine differs at this coarse resolution."""
    d, units, codes = case
    result = _run(d, 64)
    summary = result.by_year[None].summary
    unit = result.tables["unit"]
    known = sum(unit[f"area_ha_class_{c}"].sum() for c in codes)
    assert known + summary["outside_units"]["valid_area_ha"] == pytest.approx(summary["whole_raster"]["valid_area_ha"], rel=1e-12)
    exact, _ = coverage_weighted_class_areas(d / "lc.tif", units, "uid")
    fast = run(parse_config({"landcover": {"path": "lc.tif"}, "coefficients": "coefs.csv", "engine": "fast", "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid"}]}, d), out_dir=d / "fast").tables["unit"].set_index("unit_id")
    off = max(abs(fast.loc[u, f"area_ha_class_{c}"] - ref) / ref for (u, c), ref in exact.items() if ref > 0)
    assert off > 1e-3  # the cell-centre rule is visibly off on this grid: the exact engine is needed here


def test_parked_geometries_give_the_same_run(case, monkeypatch):
    """Many units: the polygons are parked as WKB during the pass (GEOS objects freed) and given back as they were."""
    import lucr.zonal as zonal

    d, _, _ = case
    plain = _run(d, 64)
    seen = []
    real = zonal.geometries_parked

    def spying(layers, min_units=None, converted=()):
        with real(layers, min_units=0, converted=converted):
            seen.append([layer.frame.geometry.isna().all() and layer.geometry_grid_crs.isna().all() for layer in layers])
            yield

    monkeypatch.setattr("lucr.runner.geometries_parked", contextmanager(spying))
    parked = _run(d, 64)
    assert seen == [[True]]  # nothing but the payload during the pass
    a, b = plain.tables["unit"], parked.tables["unit"]
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"), check_exact=True)
    assert list(a.geometry.geom_type) == list(b.geometry.geom_type)
    assert all(shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0))
    written = gpd.read_file(d / "out64" / "zonal_units.gpkg", layer="zonal_units")
    assert all(shapely.equals_exact(written.geometry.values, a.geometry.values, tolerance=0))


def test_zone_payload_finds_the_polygons_of_every_window():
    """The bucket index returns exactly the polygons whose bounding box meets a window (brute force as the oracle)."""
    from rasterio.transform import from_origin

    from lucr.grid import Grid

    rng = np.random.default_rng(5)
    centres = rng.uniform(-300, 2300, (400, 2))
    sizes = rng.exponential(40, (400, 2)) + 0.5
    boxes = shapely.box(centres[:, 0], centres[:, 1], centres[:, 0] + sizes[:, 0], centres[:, 1] + sizes[:, 1])
    multi = shapely.multipolygons([[boxes[0], boxes[1]]])  # a two-part unit
    geoms = np.r_[boxes[2:], multi]
    grid = Grid(2000, 2000, from_origin(0, 2000, 1, 1), CRS.from_epsg(3857))  # pixel = map units, rows downward
    ZonePayload.BUCKET = 128  # many buckets per window
    try:
        payload = ZonePayload.from_geometries(np.r_[geoms, shapely.box(5e6, 5e6, 5e6 + 1e4, 5e6 + 1e4)], grid)
    finally:
        ZonePayload.BUCKET = 512
    assert payload._index[2:] == (16, 16, 128)  # buckets over the grid, not over the far unit's reach
    xmin, ymin, xmax, ymax = shapely.bounds(geoms).T
    for row0, col0, h, w in [(0, 0, 2000, 2000), (100, 700, 300, 64), (1999, 1999, 1, 1), (512, 0, 512, 512), (37, 1500, 900, 500)]:
        row1, col1 = row0 + h, col0 + w
        brute = np.flatnonzero((xmin <= col1) & (xmax >= col0) & (2000 - ymax <= row1) & (2000 - ymin >= row0))
        np.testing.assert_array_equal(payload.polygons_in(row0, row1, col0, col1), brute)
    u, v, ring_end, ring_is_hole, polygon_ring_end = payload._subset(np.array([len(geoms) - 1]))
    assert polygon_ring_end.tolist() == [2] and ring_is_hole.tolist() == [False, False] and ring_end.tolist() == [5, 10]


def test_nested_levels_parked_from_the_files_wkb(sample_config, exact_run, tmp_path, monkeypatch):
    """Provinces and cities parked during the pass from the WKB read from their files (no conversion),
    and given back as they were: the same tables and polygons as the run that did not park."""
    import lucr.zonal as zonal
    from lucr.runner import run

    seen = []
    real = zonal.geometries_parked

    def converting(geometries):
        raise AssertionError("a level's polygons converted to WKB again")

    def spying(layers, min_units=None, converted=()):
        assert {id(array) for array, _ in converted} == {id(layer.geometry_grid_crs.values) for layer in layers}
        seen.append(len(converted))
        with monkeypatch.context() as m:
            m.setattr(zonal, "polygon_wkb", converting)
            with real(layers, min_units=0, converted=converted):
                seen.append([layer.frame.geometry.isna().all() and layer.geometry_grid_crs.isna().all() for layer in layers])
                yield

    monkeypatch.setattr("lucr.runner.geometries_parked", contextmanager(spying))
    parked = run(sample_config, out_dir=tmp_path / "parked", engine="exact")
    assert seen == [2, [True, True]]  # both levels' WKB from their files, both parked
    for level, a in exact_run.tables.items():
        b = parked.tables[level]
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"), check_exact=True)
        assert all(shapely.equals_exact(a.geometry.values, b.geometry.values, tolerance=0))

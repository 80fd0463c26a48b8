"""Kernels on hand-computed arrays (methods.md section 1: flux = coef[class] * area_ha)."""

import numpy as np
import pytest

from lucr.kernels import accumulate_zone_class_area, flux_density_bands
from lucr.coefficients import ClassCoefficient, CoefficientTable

NAN = np.float32(np.nan)


@pytest.fixture
def table():
    # forest sink and built-up source of seed 001 / the IGBP table; 255 nodata
    return CoefficientTable("t", (ClassCoefficient(1, "forest", -0.644), ClassCoefficient(13, "urban", 55.8), ClassCoefficient(0, "water", -0.218)), nodata=(255,))


def test_lookup_source_sink_net_with_nodata_and_unknown(table):
    _, coef_lut, off = table.dense_luts(np.dtype("uint8"))
    codes = np.array([[1, 13, 0], [255, 7, 1]], np.uint8)
    out = np.full((3, 2, 3), -99, np.float32)
    flux_density_bands(codes, coef_lut, off, out)
    f, u, w = np.float32(-0.644), np.float32(55.8), np.float32(-0.218)
    np.testing.assert_array_equal(out[0], [[0, u, 0], [NAN, NAN, 0]])
    np.testing.assert_array_equal(out[1], [[f, 0, w], [NAN, NAN, f]])
    np.testing.assert_array_equal(out[2], [[f, u, w], [NAN, NAN, f]])


def test_lookup_signed_dtype_offset():
    t = CoefficientTable("t", (ClassCoefficient(-5, "a", 2.0), ClassCoefficient(300, "b", -1.0)), nodata=(-1,))
    _, coef_lut, off = t.dense_luts(np.dtype("int16"))
    assert off == -32768
    out = np.empty((3, 1, 3), np.float32)
    flux_density_bands(np.array([[-5, 300, -1]], np.int16), coef_lut, off, out)
    np.testing.assert_array_equal(out[2], [[2.0, -1.0, NAN]])


NONE32, NONE64 = np.zeros(0, np.int32), np.zeros(0, np.int64)


def _crosstab(codes, zones, row_area, class_of_code, off, n_zones, hist, edges=(NONE32, NONE32, NONE64, NONE64)):
    """The kernel's sparse (zones present) result as a dense (n_zones + 1, 5) array."""
    scratch = np.full(n_zones + 1, -1, np.int64)
    ids, local = accumulate_zone_class_area(codes, zones, row_area, class_of_code, off, 5, scratch, hist, *edges)
    assert (scratch == -1).all()  # the scratch is left as it was found
    area = np.zeros((n_zones + 1, 5), np.int64)
    area[ids] = local
    return area


def test_crosstab_hand_computed(table):
    class_of_code, _, off = table.dense_luts(np.dtype("uint8"))
    # columns: 0 forest(1), 1 urban(13), 2 water(0), 3 unknown, 4 nodata
    codes = np.array([[1, 1, 13], [0, 7, 255]], np.uint8)
    zones = np.array([[1, 2, 2], [0, 1, 1]], np.int32)
    row_area = np.array([100, 7], np.int64)
    hist = np.zeros(256, np.int64)
    area = _crosstab(codes, zones, row_area, class_of_code, off, 2, hist)
    expected = np.array([
        [0, 0, 7, 0, 0],      # outside: one water cell of row 1
        [100, 0, 0, 7, 7],    # zone 1: forest (row 0), unknown code 7 and nodata (row 1)
        [100, 100, 0, 0, 0],  # zone 2: forest + urban in row 0
    ])
    np.testing.assert_array_equal(area, expected)
    assert hist[1] == 2 and hist[13] == 1 and hist[0] == 1 and hist[7] == 1 and hist[255] == 1 and hist.sum() == 6
    # the histogram names code 7 as the only code of the 'unknown' column
    assert [c for c in np.flatnonzero(hist) if class_of_code[c - off] == table.n_classes] == [7]
    # exact-engine corrections: cell (0, 1) (forest, centre in zone 2) is 30 % zone 2 and 70 % zone 3,
    # a zone without any cell centre in the chunk; cell (1, 0) (water, outside) is 40 % zone 1
    edges = (np.array([0, 0, 0, 1, 1, 1], np.int32), np.array([1, 1, 1, 0, 0, 0], np.int32),
             np.array([2, 3, 2, 1, 0, 0], np.int64), np.array([30, 70, -100, 3, -7, 4], np.int64))
    area = _crosstab(codes, zones, row_area, class_of_code, off, 3, np.zeros(256, np.int64), edges)
    np.testing.assert_array_equal(area[:3], [[0, 0, 4, 0, 0], [100, 0, 3, 7, 7], [30, 100, 0, 0, 0]])
    np.testing.assert_array_equal(area[3], [70, 0, 0, 0, 0])


def test_crosstab_empty_and_all_nodata_chunks(table):
    class_of_code, _, off = table.dense_luts(np.dtype("uint8"))
    hist = np.zeros(256, np.int64)
    area = _crosstab(np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.int32), np.zeros(0, np.int64), class_of_code, off, 1, hist)
    assert area.sum() == 0 and hist.sum() == 0
    area = _crosstab(np.full((3, 4), 255, np.uint8), np.ones((3, 4), np.int32), np.array([1, 2, 3], np.int64), class_of_code, off, 1, hist)
    assert area[1, 4] == 4 * (1 + 2 + 3) and area.sum() == 24 and hist[255] == 12
    out = np.empty((3, 3, 4), np.float32)
    _, coef_lut, _ = table.dense_luts(np.dtype("uint8"))
    flux_density_bands(np.full((3, 4), 255, np.uint8), coef_lut, off, out)
    assert np.isnan(out).all()


def test_raster_nodata_overrides_table(table):
    class_of_code, coef_lut, off = table.dense_luts(np.dtype("uint8"), extra_nodata=(1,))
    assert class_of_code[1] == table.n_classes + 1 and np.isnan(coef_lut[1])


def test_kernel_docstring_examples():
    import doctest

    import lucr.kernels.coverage
    import lucr.kernels.crosstab
    import lucr.kernels.lookup
    import lucr.kernels.raster_sums
    import lucr.kernels.transitions

    for module in (lucr.kernels.coverage, lucr.kernels.crosstab, lucr.kernels.lookup, lucr.kernels.raster_sums, lucr.kernels.transitions):
        failed, _ = doctest.testmod(module, extraglobs={"np": np})
        assert failed == 0, module.__name__


def test_edge_corrections_appended_strip_by_strip_equal_the_whole_window():
    """Corrections of a window's strips, appended to buffers that must grow (from one entry), are the
    whole window's entries: the same (row, column, zone, share, area) once each."""
    from lucr.kernels.coverage import append_edge_corrections, edge_corrections

    rng = np.random.default_rng(7)
    zones = rng.integers(0, 4, (10, 6)).astype(np.int32)
    row_area_fx = rng.integers(90, 110, 10).astype(np.int64)
    cells = rng.choice(60, 25, replace=False)
    rows, cols, fraction, unit = [], [], [], []
    for cell in cells:  # 1 to 3 units crossing each boundary cell, fractions summing to at most 1
        units = rng.choice(np.arange(1, 4), rng.integers(1, 4), replace=False)
        split = rng.dirichlet(np.ones(len(units) + 1))[: len(units)]
        rows += [cell // 6] * len(units)
        cols += [cell % 6] * len(units)
        fraction += split.tolist()
        unit += units.tolist()
    rows, cols, fraction, unit = np.array(rows), np.array(cols), np.array(fraction), np.array(unit, np.int64)
    whole = np.rec.fromarrays(edge_corrections(rows, cols, fraction, unit, zones, row_area_fx))
    buffers, m = (np.empty(1, np.int32), np.empty(1, np.int32), np.empty(1, np.int32), np.empty(1), np.empty(1, np.int64)), 0
    for r0, r1 in [(0, 4), (4, 5), (5, 10)]:
        inside = (rows >= r0) & (rows < r1)
        *buffers, m = append_edge_corrections(rows[inside] - r0, cols[inside], fraction[inside], unit[inside], zones[r0:r1], row_area_fx[r0:r1], r0, *buffers, m)
    strips = np.rec.fromarrays([b[:m] for b in buffers])
    assert m == len(whole) > len(rows)  # the outside row's entries too
    assert np.array_equal(np.sort(whole, order=["f0", "f1", "f2"]), np.sort(strips, order=["f0", "f1", "f2"]))


def _pixel_rings(polygons):
    import shapely

    parts, part_poly = shapely.get_parts(polygons, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, vertex_ring = shapely.get_coordinates(rings, return_index=True)
    ring_end = np.cumsum(np.bincount(vertex_ring, minlength=len(rings))).astype(np.int64)
    ring_is_hole = np.r_[False, ring_part[1:] == ring_part[:-1]]
    return coords, ring_end, ring_is_hole, np.cumsum(np.bincount(part_poly[ring_part], minlength=len(polygons))).astype(np.int64)


def _voronoi_units(seed=1):
    import shapely

    rng = np.random.default_rng(seed)
    pts = shapely.points(rng.uniform(0, 300, 60), rng.uniform(0, 200, 60))
    cells = [shapely.intersection(c, shapely.box(-5, -5, 305, 205)) for c in shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts)))]
    hole = shapely.Point(150.3, 99.7).buffer(20.2)
    units = np.array([c.difference(hole) for c in cells] + [hole])
    return np.array([u.reverse() if i % 2 else u for i, u in enumerate(units)])  # rings of either winding


def test_coverage_fractions_equal_geos_intersections():
    """Every listed cell's fraction is the GEOS area of (cell ∩ polygon); unlisted cells are 0 or 1; any window gives the same."""
    import shapely

    from lucr.kernels.coverage import boundary_coverage_many

    units = _voronoi_units()
    coords, ring_end, is_hole, poly_end = _pixel_rings(units)
    u, v = coords[:, 0].copy(), 200.0 - coords[:, 1]  # rows grow downwards
    rows, cols, frac, poly = boundary_coverage_many(u, v, ring_end, is_hole, poly_end, 0, 200, 0, 300)
    boxes = shapely.box(cols, 200.0 - rows - 1, cols + 1, 200.0 - rows)
    np.testing.assert_allclose(frac, shapely.area(shapely.intersection(boxes, units[poly])), rtol=0, atol=1e-12)
    assert len(set(zip(rows.tolist(), cols.tolist(), poly.tolist()))) == len(rows)  # each (cell, unit) once
    listed = np.zeros((len(units), 200, 300), bool)
    listed[poly, rows, cols] = True
    r, c = np.mgrid[0:200, 0:300]
    centres = shapely.points(c.ravel() + 0.5, 200.0 - r.ravel() - 0.5)
    for p in (0, 17, len(units) - 1):  # unlisted cells: wholly inside (centre inside) or outside
        cell_boxes = shapely.box(c.ravel(), 199.0 - r.ravel(), c.ravel() + 1, 200.0 - r.ravel())
        whole = shapely.area(shapely.intersection(cell_boxes, units[p])).reshape(200, 300)
        np.testing.assert_allclose(whole[~listed[p]], shapely.contains(units[p], centres).reshape(200, 300)[~listed[p]].astype(float), atol=1e-12)
    w_rows, w_cols, w_frac, w_poly = boundary_coverage_many(u, v, ring_end, is_hole, poly_end, 37, 121, 90, 233)
    inside = (rows >= 37) & (rows < 121) & (cols >= 90) & (cols < 233)
    assert sorted(zip(w_rows.tolist(), w_cols.tolist(), w_poly.tolist(), w_frac.tolist())) == sorted(zip(rows[inside].tolist(), cols[inside].tolist(), poly[inside].tolist(), frac[inside].tolist()))


def test_cell_centre_burn_equals_gdal_rasterize():
    from affine import Affine
    from rasterio.features import rasterize

    from lucr.kernels.coverage import burn_cell_centres

    units = _voronoi_units(seed=5)
    transform = Affine(1, 0, 0, 0, -1, 200)
    gdal = rasterize(((g, i + 1) for i, g in enumerate(units)), out_shape=(200, 300), transform=transform, fill=0, dtype="int32")
    coords, ring_end, _, poly_end = _pixel_rings(units)
    ours = np.zeros((200, 300), np.int32)
    burn_cell_centres(coords[:, 0].copy(), 200.0 - coords[:, 1], ring_end, poly_end, np.arange(1, len(units) + 1, dtype=np.int32), 0, 200, 0, 300, ours)
    np.testing.assert_array_equal(ours, gdal)
    window = np.zeros((70, 90), np.int32)
    burn_cell_centres(coords[:, 0].copy(), 200.0 - coords[:, 1], ring_end, poly_end, np.arange(1, len(units) + 1, dtype=np.int32), 50, 120, 100, 190, window)
    np.testing.assert_array_equal(window, ours[50:120, 100:190])


def test_polygon_rings_from_wkb_match_shapely_parts_and_rings():
    """The WKB reader's vertices and ring structure equal shapely's get_parts / get_rings /
    get_coordinates, for polygons, holes, multi-part units and 3-D coordinates (z skipped);
    a unit that is not a polygon is named."""
    import shapely

    from lucr.kernels.wkb import polygon_rings
    from lucr.zonal import polygon_wkb

    rng = np.random.default_rng(3)
    boxes = shapely.box(*rng.uniform(0, 50, (4, 60)))
    geoms = np.r_[
        shapely.normalize(boxes),
        shapely.Polygon([(0, 0), (9, 0), (9, 9), (0, 9)], holes=[[(1, 1), (2, 1), (2, 2)], [(5, 5), (6, 5), (6, 7)]]),
        shapely.multipolygons([[shapely.box(0, 0, 1, 1), shapely.Polygon([(2, 2), (5, 2), (5, 5)], [[(3, 2.5), (4, 2.5), (4, 3)]])]]),
        shapely.force_3d(shapely.box(10, 10, 12, 13), 7.5),
    ]
    wkb = polygon_wkb(geoms)
    lengths = np.array([len(w) for w in wkb])
    xy, ring_end, ring_is_hole, polygon_ring_end, bad = polygon_rings(np.frombuffer(b"".join(wkb), np.uint8), np.cumsum(lengths) - lengths)
    assert bad == -1
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, vertex_of = shapely.get_coordinates(rings, return_index=True)
    np.testing.assert_array_equal(xy.view(np.float64).reshape(-1, 2), coords)
    np.testing.assert_array_equal(ring_end, np.cumsum(np.bincount(vertex_of, minlength=len(rings))))
    np.testing.assert_array_equal(ring_is_hole, np.r_[False, ring_of[1:] == ring_of[:-1]])
    np.testing.assert_array_equal(polygon_ring_end, np.cumsum(np.bincount(part_of[ring_of], minlength=len(geoms))))
    mixed = polygon_wkb(np.r_[geoms[:2], shapely.Point(1, 1)])
    lengths = np.array([len(w) for w in mixed])
    assert polygon_rings(np.frombuffer(b"".join(mixed), np.uint8), np.cumsum(lengths) - lengths)[-1] == 2


def test_zone_payload_is_the_same_whatever_the_batch():
    """Units read in batches give the arrays of one batch (ring and polygon ends offset across batches)."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.grid import Grid
    from lucr.zonal import ZonePayload

    rng = np.random.default_rng(8)
    x, y = rng.uniform(0, 900, (2, 40))
    geoms = np.r_[shapely.box(x, y, x + 30, y + 20), shapely.multipolygons([[shapely.box(0, 0, 5, 5), shapely.box(10, 10, 20, 20).difference(shapely.box(12, 12, 14, 14))]])]
    grid = Grid(1000, 1000, from_origin(0, 1000, 1, 1), CRS.from_epsg(3857))
    whole = ZonePayload.from_geometries(geoms, grid)
    ZonePayload.BATCH = 7
    try:
        batched = ZonePayload.from_geometries(geoms, grid)
    finally:
        ZonePayload.BATCH = 20_000
    for name in ("u", "v", "ring_end", "ring_is_hole", "polygon_ring_end", "bounds"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(whole, name))
    assert whole.polygon_ring_end[-1] == len(geoms) - 1 + 3  # one ring per box; the last unit: two parts, one hole


def test_polygon_rings_refuse_what_they_cannot_read_and_the_payload_non_finite_units():
    """Truncated or padded WKB, an EWKB SRID and big-endian WKB name their unit; so does a unit with
    an infinite coordinate in the payload (the coverage kernels size their buffers from coordinates)."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.grid import Grid
    from lucr.kernels.wkb import polygon_rings
    from lucr.zonal import ZonePayload, polygon_wkb

    good = polygon_wkb(np.array([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 4)], dtype=object)).tolist()

    def bad_unit(units):
        lengths = np.array([len(w) for w in units])
        return polygon_rings(np.frombuffer(b"".join(units), np.uint8), np.cumsum(lengths) - lengths)[-1]

    assert bad_unit(good) == -1
    assert bad_unit([good[0], good[1][:-8]]) == 1  # truncated
    assert bad_unit([good[0] + bytes(8), good[1]]) == 0  # bytes its counts do not read
    assert bad_unit([good[0], shapely.to_wkb(shapely.set_srid(shapely.box(0, 0, 1, 1), 4326), include_srid=True, byte_order=1)]) == 1
    assert bad_unit([shapely.to_wkb(shapely.box(0, 0, 1, 1), byte_order=0), good[1]]) == 0
    grid = Grid(10, 10, from_origin(0, 10, 1, 1), CRS.from_epsg(3857))
    with pytest.raises(ValueError, match="unit 1 has a non-finite coordinate"):
        ZonePayload.from_geometries(np.array([shapely.box(0, 0, 1, 1), shapely.Polygon([(0, 0), (np.inf, 0), (1, 1)])], dtype=object), grid)

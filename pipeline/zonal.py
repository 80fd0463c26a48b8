"""Zonal statistics per admin unit from one (zone x class) area cross-tab.

Both engines rasterise the admin polygons onto each chunk's window once (cell-centre
rule, a numba scan-line kernel that burns what GDAL's rasterize burns; a shared layer of the
chunk bundle, :mod:`lucr.chunk`)
and the cross-tab reduction (:mod:`lucr.products.zone_class_area`) accumulates the area of
every (zone, class) pair. The exact engine also computes, in the same pass, the exact
coverage fraction of every cell a unit boundary crosses (:mod:`lucr.kernels.coverage`) and
corrects those cells: each unit then gets ``fraction x true cell area`` of every cell, as
exactextract's coverage-weighted sums do. Only the boundary cells cost extra.

Nested levels are computed at the finest level and summed up to their parents by
parent id, in int64 fixed-point, so provinces equal the exact sum of their cities.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio.windows import Window

from lucr.chunk import EdgeCells
from lucr.geos_bulk import geometries_from_wkb
from lucr.grid import Grid
from lucr.io import ZoneLayer
from lucr.malloc import return_freed_memory
from lucr.kernels.coverage import append_edge_corrections, boundary_coverage_many, burn_cell_centres
from lucr.kernels.wkb import polygon_rings


def polygon_wkb(geometries: np.ndarray) -> np.ndarray:
    """Little-endian WKB of each geometry (what :class:`ZonePayload` reads and :func:`geometries_parked` holds)."""
    return shapely.to_wkb(np.asarray(geometries, dtype=object), byte_order=1)


def concatenated_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``np.r_[starts[0]:ends[0], starts[1]:ends[1], ...]`` without a Python loop."""
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)


class ZonePayload:
    """Polygons of the finest level in the full grid's pixel coordinates, with their zone index (1..n).

    Held as flat arrays (vertices, rings, polygons: ~20 bytes per vertex) rather than as
    GEOS geometries (~700 bytes per polygon more: 220 MiB for 324,523 units of ~5
    vertices), so that a run with 1e5-1e6 units keeps its memory for the pass. Polygons
    are found per chunk through a bucket index of their bounding boxes (squares of
    ``BUCKET`` cells), so the work per chunk grows with the polygons it holds, not with
    the number of units of the run.
    """

    BUCKET = 512  # cells per side of an index bucket (a GeoTIFF tile)
    BATCH = 20_000  # units read at a time (their bytes joined, their vertices decoded: a few MB)
    #: Rows of a window whose boundary cells are corrected at a time. The exact engine's working
    #: buffers (~110 bytes per boundary entry) then scale with a strip, not with the chunk: at
    #: 324,523 units a 2048 x 2048 chunk has ~1M entries, ~140 MB per thread in one go. A polygon
    #: spanning several strips has its edges scanned once per strip (8 times across a 2048-row
    #: chunk): nothing measurable for 300 cities of ~500 vertices.
    STRIP_ROWS = 256

    def __init__(self, u: np.ndarray, v: np.ndarray, ring_end: np.ndarray, ring_is_hole: np.ndarray, polygon_ring_end: np.ndarray,
                 grid_shape: tuple[int, int]):
        self.u, self.v = u, v  # vertex column and row in the full grid (float64)
        self.ring_end = ring_end  # index one past each ring's last vertex (int64)
        self.ring_is_hole = ring_is_hole  # whether each ring is a hole (a part's first ring is its exterior)
        self.polygon_ring_end = polygon_ring_end  # index one past each polygon's last ring (int64)
        self.ring_start = np.r_[0, ring_end[:-1]].astype(np.int64)
        self.polygon_ring_start = np.r_[0, polygon_ring_end[:-1]].astype(np.int64)
        self.vertex_start = self.ring_start[self.polygon_ring_start]
        self.vertex_end = ring_end[polygon_ring_end - 1]
        self.bounds = np.stack([  # umin, vmin, umax, vmax of each polygon
            np.minimum.reduceat(u, self.vertex_start), np.minimum.reduceat(v, self.vertex_start),
            np.maximum.reduceat(u, self.vertex_start), np.maximum.reduceat(v, self.vertex_start),
        ])
        self.grid_shape = grid_shape  # (rows, columns) of the full grid
        self._index = self._bucket_index()  # built once (a few ms per 1e5 polygons), shipped with the payload

    @classmethod
    def from_geometries(cls, geometries: np.ndarray, grid: Grid) -> "ZonePayload":
        """The polygons (Polygon or MultiPolygon, none empty) in ``grid``'s CRS."""
        return cls.from_wkb(polygon_wkb(geometries), grid)

    @classmethod
    def from_wkb(cls, wkb: np.ndarray, grid: Grid) -> "ZonePayload":
        """The polygons given as :func:`polygon_wkb` of geometries in ``grid``'s CRS, their rings read
        from the bytes (:func:`lucr.kernels.wkb.polygon_rings`), ``BATCH`` units at a time."""
        inv = ~grid.transform
        u, v, ring_end, ring_is_hole, polygon_ring_end = [], [], [], [], []
        n_vertices = n_rings = 0
        for b in range(0, len(wkb), cls.BATCH):
            batch = wkb[b : b + cls.BATCH]
            lengths = np.fromiter(map(len, batch), np.int64, len(batch))
            xy, ends, holes, polygon_ends, bad = polygon_rings(np.frombuffer(b"".join(batch), np.uint8), np.cumsum(lengths) - lengths)
            if bad >= 0:
                raise ValueError(f"unit {b + bad} is not a little-endian WKB Polygon or MultiPolygon")
            x, y = xy.view(np.float64).reshape(-1, 2).T
            finite = np.isfinite(x) & np.isfinite(y)
            if not finite.all():  # the kernels size their buffers from the coordinates
                ring = np.searchsorted(ends, np.flatnonzero(~finite)[0], side="right")
                raise ValueError(f"unit {b + int(np.searchsorted(polygon_ends, ring, side='right'))} has a non-finite coordinate")
            u.append(inv.a * x + inv.b * y + inv.c)
            v.append(inv.d * x + inv.e * y + inv.f)
            ring_end.append(ends + n_vertices)
            ring_is_hole.append(holes)
            polygon_ring_end.append(polygon_ends + n_rings)
            n_vertices += len(x)
            n_rings += len(ends)
        return cls(*(np.concatenate(a) for a in (u, v, ring_end, ring_is_hole, polygon_ring_end)), grid_shape=grid.shape)

    @property
    def n_zones(self) -> int:
        return len(self.polygon_ring_end)

    @property
    def dtype(self) -> str:
        """Smallest integer type holding every zone index (uint16 halves the memory traffic)."""
        return "uint16" if self.n_zones < 65535 else "int32"

    def _bucket_index(self) -> tuple[np.ndarray, np.ndarray, int, int, int]:
        """Polygons by bucket (CSR: ``starts`` into ``polygons``) over the grid's buckets.

        Sized by the grid, not by the polygons' reach: a unit far outside the raster (or with
        a non-finite vertex) is in no bucket, as no window can meet it.
        """
        umin, vmin, umax, vmax = self.bounds
        height, width = self.grid_shape
        n_rows, n_cols = max(-(-height // self.BUCKET), 1), max(-(-width // self.BUCKET), 1)
        with np.errstate(invalid="ignore"):
            inside = (umax >= 0) & (umin <= width) & (vmax >= 0) & (vmin <= height)  # False for NaN
        clip = lambda x, n: np.clip(np.floor(np.where(inside, x, 0) / self.BUCKET), 0, n - 1).astype(np.int64)  # noqa: E731
        c0, c1, r0, r1 = clip(umin, n_cols), clip(umax, n_cols), clip(vmin, n_rows), clip(vmax, n_rows)
        width_b = c1 - c0 + 1
        count = np.where(inside, width_b * (r1 - r0 + 1), 0)
        k = concatenated_ranges(np.zeros_like(count), count)  # position within each polygon's buckets
        w = np.repeat(width_b, count)
        bucket = (np.repeat(r0, count) + k // w) * n_cols + np.repeat(c0, count) + k % w
        order = np.argsort(bucket, kind="stable")
        polygons = np.repeat(np.arange(self.n_zones, dtype=np.int64), count)[order]
        starts = np.searchsorted(bucket[order], np.arange(n_rows * n_cols + 1))
        return polygons, starts, n_rows, n_cols, self.BUCKET

    def polygons_in(self, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
        """Sorted indices (0-based) of the polygons whose bounding box meets the window ``[row0, row1) x [col0, col1)``."""
        polygons, starts, n_rows, n_cols, bucket = self._index
        b_r0, b_r1 = min(row0 // bucket, n_rows - 1), min((row1 - 1) // bucket, n_rows - 1)
        b_c0, b_c1 = min(col0 // bucket, n_cols - 1), min((col1 - 1) // bucket, n_cols - 1)
        rows = np.arange(b_r0, b_r1 + 1) * n_cols
        first, last = starts[rows + b_c0], starts[rows + b_c1 + 1]
        found = np.unique(polygons[concatenated_ranges(first, last)])
        umin, vmin, umax, vmax = self.bounds[:, found]
        meets = (umin <= col1) & (umax >= col0) & (vmin <= row1) & (vmax >= row0)
        return found[meets]

    def _subset(self, hit: np.ndarray) -> tuple[np.ndarray, ...]:
        """``u, v, ring_end, ring_is_hole, polygon_ring_end`` of the polygons ``hit`` alone (the kernels' inputs)."""
        vertices = concatenated_ranges(self.vertex_start[hit], self.vertex_end[hit])
        rings = concatenated_ranges(self.polygon_ring_start[hit], self.polygon_ring_end[hit])
        ring_length = self.ring_end[rings] - self.ring_start[rings]
        ring_count = self.polygon_ring_end[hit] - self.polygon_ring_start[hit]
        return self.u[vertices], self.v[vertices], np.cumsum(ring_length), self.ring_is_hole[rings], np.cumsum(ring_count)

    def chunk_layers(self, grid: Grid, window: Window, row_area_fx: np.ndarray, exact: bool) -> tuple[np.ndarray, EdgeCells | None]:
        """The zone raster of one window (cell-centre rule) and, for the exact engine, its boundary corrections.

        The polygons meeting the window, in the full grid's pixel coordinates, serve both
        kernels (:mod:`lucr.kernels.coverage`), so the zone raster and the coverage
        fractions see the same boundary.
        """
        row0, col0 = int(window.row_off), int(window.col_off)
        row1, col1 = row0 + int(window.height), col0 + int(window.width)
        zones = np.zeros((row1 - row0, col1 - col0), dtype=self.dtype)
        hit = self.polygons_in(row0, row1, col0, col1)
        if hit.size == 0:
            return zones, (EdgeCells.empty() if exact else None)
        u, v, ring_end, ring_is_hole, polygon_ring_end = self._subset(hit)
        burn_cell_centres(u, v, ring_end, polygon_ring_end, (hit + 1).astype(zones.dtype), row0, row1, col0, col1, zones)
        if not exact:
            return zones, None
        del u, v, ring_end, ring_is_hole, polygon_ring_end  # each strip takes the polygons meeting it
        return zones, self._edge_cells(hit, (row0, row1, col0, col1), zones, row_area_fx)

    def _edge_cells(self, hit, bounds, zones, row_area_fx) -> EdgeCells:
        """The exact engine's corrections of the cell-centre ``zones`` of one window.

        Every cell a unit's boundary crosses gets the unit's exact coverage fraction
        (:func:`lucr.kernels.coverage.boundary_coverage_many`, computed in the full grid's pixel
        coordinates so that a cell's fraction does not depend on the chunking); what no unit
        covers goes to the outside row (:func:`lucr.kernels.coverage.append_edge_corrections`).
        Where units of one level overlap, a cell inside both counts for both (as
        exactextract counts it). Done ``STRIP_ROWS`` rows at a time, each strip with the
        polygons meeting it, into one set of buffers.
        """
        row0, row1, col0, col1 = bounds
        vmin, vmax = self.bounds[1, hit], self.bounds[3, hit]
        buffers, m = None, 0
        for s0 in range(row0, row1, self.STRIP_ROWS):
            s1 = min(s0 + self.STRIP_ROWS, row1)
            in_strip = hit[(vmin <= s1) & (vmax >= s0)]  # a polygon crossing a row of the strip meets it
            if in_strip.size == 0:
                continue
            rows, cols, frac, polygon = boundary_coverage_many(*self._subset(in_strip), s0, s1, col0, col1)
            if buffers is None:  # an estimate: 5/4 of the first strip's entries for it and each strip left (grown if short)
                capacity = max(4096, len(rows) * 5 // 4 * -(-(row1 - s0) // self.STRIP_ROWS))
                buffers = (np.empty(capacity, np.int32), np.empty(capacity, np.int32), np.empty(capacity, np.int32), np.empty(capacity), np.empty(capacity, np.int64))
            rows -= s0
            cols -= col0
            strip = slice(s0 - row0, s1 - row0)
            *buffers, m = append_edge_corrections(rows, cols, frac, in_strip[polygon].astype(np.int64) + 1, zones[strip], row_area_fx[strip], s0 - row0, *buffers, m)
        if buffers is None:
            return EdgeCells.empty()
        # the chunk keeps what it returns: buffers mostly unused (later strips sparser than the first) are not kept
        return EdgeCells(*(b[:m] if 2 * m >= len(b) else b[:m].copy() for b in buffers))


#: Units (all levels) from which :func:`geometries_parked` parks the polygons during the pass: below,
#: their GEOS objects hold < 15 MiB and parking (~3 us per unit) would cost more than it saves.
PARK_MIN_UNITS = 20_000


@contextmanager
def geometries_parked(layers, min_units: int | None = None, converted: tuple = ()) -> Iterator[None]:
    """The units' polygons held as WKB while the pass runs, and given back after it (the same geometries).

    The pass reads the finest level's :class:`ZonePayload` only; the GEOS objects of the
    levels' frames (~700 bytes per polygon beyond its vertices) would sit in memory beside
    the chunks in flight: 220 MiB of a 324,523-unit run's 1 GiB. Their geometry arrays are
    emptied in place, so every frame and series sharing them sees them parked and back.
    Only from ``min_units`` units (default :data:`PARK_MIN_UNITS`). ``converted`` holds
    ``(geometry array, its polygon_wkb)`` pairs made already (the payload's), not made twice.
    """
    if sum(len(layer.frame) for layer in layers) < (PARK_MIN_UNITS if min_units is None else min_units):
        yield
        return
    arrays = {}
    for layer in layers:
        for series in (layer.frame.geometry, layer.geometry_grid_crs):
            arrays.setdefault(id(series.values), series.values)
    known = {id(array): wkb for array, wkb in converted}
    parked = []
    try:
        for geometry_array in arrays.values():
            geometries = np.asarray(geometry_array, dtype=object)
            if shapely.is_missing(geometries).all():
                continue  # shares its data with an array parked already (units have no null geometry)
            wkb = known[id(geometry_array)] if id(geometry_array) in known else polygon_wkb(geometries)
            parked.append((geometry_array, wkb))
            geometry_array[:] = None
        return_freed_memory()  # GEOS's small blocks are scattered over the heap: free pages go back to the OS
        yield
    finally:
        if parked:
            return_freed_memory()  # the pass's freed blocks first: the geometries come back into a trimmed heap
        for geometry_array, wkb in parked:
            geometry_array[:] = geometries_from_wkb(wkb)


def aggregate_to_parent(child_rows: np.ndarray, child_parent_ids: np.ndarray, parent_ids: np.ndarray) -> np.ndarray:
    """Sum cross-tab rows of child units into their parents (by parent id); int64 fixed point stays exact.

    ``child_rows`` has one row per child unit (no outside row); every parent id must be
    one of ``parent_ids`` (``lucr.io.check_nesting`` ensures it when reading).
    """
    index = {pid: i for i, pid in enumerate(parent_ids)}
    out = np.zeros((len(parent_ids), child_rows.shape[1]), dtype=child_rows.dtype)
    np.add.at(out, np.array([index[p] for p in child_parent_ids], dtype=np.int64), child_rows)
    return out


def geometry_areas_ha(geoms, crs) -> np.ndarray:
    """True area (ha) of geometries given in ``crs``.

    Geographic CRS: geodesic area on the CRS's ellipsoid (pyproj ``Geod``); projected:
    planar area in the CRS's units (true area for equal-area projections).
    """
    from pyproj import CRS as ProjCRS

    geoms = np.asarray(geoms, dtype=object)
    pcrs = ProjCRS.from_user_input(crs)
    if pcrs.is_geographic:
        geod = pcrs.get_geod()
        return np.array([0.0 if g.is_empty else abs(geod.geometry_area_perimeter(g)[0]) for g in geoms]) / 1e4
    unit = pcrs.axis_info[0].unit_conversion_factor
    return shapely.area(geoms) * unit * unit / 1e4


def polygon_areas_ha(layer: ZoneLayer, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """True area (ha) of each unit, and of its part outside the grid's extent."""
    geoms = np.asarray(layer.geometry_grid_crs.values, dtype=object)
    extent = shapely.box(*grid.bounds)
    shapely.prepare(extent)
    crossing = np.flatnonzero(~shapely.contains(extent, geoms))  # the overlay only where a unit leaves the grid
    outside_ha = np.zeros(len(geoms))
    outside_ha[crossing] = geometry_areas_ha(shapely.difference(geoms[crossing], extent), grid.crs)
    return geometry_areas_ha(geoms, grid.crs), outside_ha


def numeric_columns(class_codes) -> list[str]:
    """The numeric columns of :func:`unit_table` (what an analysis may name)."""
    return ["area_ha", "valid_fraction", *[f"area_ha_class_{c}" for c in class_codes], "source_tc", "sink_tc", "net_tc", "net_tc_per_ha", "cbc_landcover", "polygon_area_ha"]


def flux_totals(known_ha: np.ndarray, coefs: np.ndarray, flux_raster=None) -> tuple[np.ndarray, np.ndarray]:
    """Sources (>= 0) and sinks (<= 0), t C / yr, of rows of class areas ``known_ha`` (n, K).

    With ``flux_raster`` (:class:`lucr.products.raster_sums.RasterSums` of the same rows,
    t C / yr and ha per class column), the raster's sums replace the class coefficient over
    the area the raster covers.
    """
    k = len(coefs)
    if flux_raster is not None:
        known_ha = known_ha - flux_raster.area[:, :k]
    source = known_ha @ np.where(coefs > 0, coefs, 0.0)
    sink = known_ha @ np.where(coefs < 0, coefs, 0.0)
    if flux_raster is not None:
        source = source + flux_raster.pos[:, :k].sum(axis=1)
        sink = sink + flux_raster.neg[:, :k].sum(axis=1)
    return source, sink


def unit_table(layer: ZoneLayer, area_ha_cols: np.ndarray, coefs: np.ndarray, class_codes: np.ndarray, grid: Grid, flux_raster=None,
               override_kind: str = "flux_raster"):
    """The documented zonal table of one level (one row per unit).

    Parameters
    ----------
    layer : the units (ids, names, parent ids, geometry)
    area_ha_cols : (n_units, K + 2) area (ha) per class, then unknown, then nodata
    coefs : (K,) flux coefficients, t C / ha / yr (sources positive)
    class_codes : (K,) land-cover codes of the classes

    Columns: ``unit_id, name, parent_id, level, area_ha, valid_fraction,
    area_ha_class_<code>..., source_tc, sink_tc, net_tc, net_tc_per_ha, cbc_landcover,
    polygon_area_ha`` (and ``flux_raster_area_ha`` with a flux raster, ``builtup_statistics_tc`` with
    the statistics' built-up flux, ``override_kind="builtup"``); fluxes in t C / yr,
    sinks negative; ``flux_raster``: :class:`lucr.products.raster_sums.RasterSums` of the units. ``cbc_landcover`` is the carbon
    balance coefficient of methods.md §5 under the coefficient method: carbon released by
    the source classes (cropland, built-up) over carbon fixed by the sink classes,
    ``source_tc / |sink_tc|`` (> 1: the unit emits more than its ecosystems fix; NaN
    without sink land). ``area_ha`` is the unit's
    area on the grid plus its part outside the grid's extent (no data there), so
    ``valid_fraction`` is the share of the unit with land-cover data.
    """
    k = len(coefs)
    known = area_ha_cols[:, :k]
    valid_ha = known.sum(axis=1)
    polygon_ha, outside_ha = polygon_areas_ha(layer, grid)
    area_ha = area_ha_cols.sum(axis=1) + outside_ha
    source, sink = flux_totals(known, coefs, flux_raster)
    kept = [c for c in layer.frame.columns if c not in ("unit_id", "name", "parent_id", layer.frame.geometry.name)]  # zones[].keep
    columns: dict[str, Any] = {c: layer.frame[c].array for c in ("unit_id", "name", "parent_id", *kept)}  # their dtypes kept
    columns["level"] = pd.array([layer.level] * len(area_ha), dtype=layer.frame["unit_id"].dtype)
    columns["area_ha"] = area_ha
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["valid_fraction"] = np.where(area_ha > 0, valid_ha / area_ha, 0.0)
        net = source + sink
        for j, code in enumerate(class_codes):
            columns[f"area_ha_class_{code}"] = known[:, j]
        columns["source_tc"] = source
        columns["sink_tc"] = sink
        columns["net_tc"] = net
        columns["net_tc_per_ha"] = np.where(valid_ha > 0, net / valid_ha, np.nan)
        columns["cbc_landcover"] = np.where(sink < 0, source / -sink, np.nan)
    columns["polygon_area_ha"] = polygon_ha
    if flux_raster is not None and override_kind == "flux_raster":
        columns["flux_raster_area_ha"] = flux_raster.area[:, :k].sum(axis=1)
    if flux_raster is not None and override_kind == "builtup":  # statistics.builtup: which units' built-up flux is the statistics'
        columns["builtup_statistics_tc"] = np.where(flux_raster.area[:, :k].sum(axis=1) > 0, flux_raster.pos[:, :k].sum(axis=1), np.nan)
    # built at once (one block per dtype): column by column, 324,523 units held 112 MiB for a 57 MiB table
    return gpd.GeoDataFrame(columns, geometry=layer.frame.geometry.values, crs=layer.frame.crs)

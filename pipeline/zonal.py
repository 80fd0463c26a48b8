"""Zonal statistics per admin unit from one (zone x class) area cross-tab.

Fast engine (default): admin polygons are rasterised onto each chunk's window once
(cell-centre rule, ``rasterio.features.rasterize``; a shared layer of the chunk bundle,
:mod:`lucr.chunk`) and the cross-tab reduction (:mod:`lucr.products.zone_class_area`)
accumulates the area of every (zone, class) pair; the tree-reduced cross-tab is tiny.
Exact engine: exactextract's coverage fractions weight each cell's true area, for
edge-exact numbers on coarse grids (an extra read of the raster by exactextract).

Nested levels are computed at the finest level and summed up to their parents by
parent id, in int64 fixed-point, so provinces equal the exact sum of their cities.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize

from lucr.area import row_cell_area_ha, to_fixed_point
from lucr.errors import InputFileError
from lucr.grid import Grid
from lucr.io import ZoneLayer
from lucr.legend import ClassColumns

# rasterio's rasterize silences this warning of its in-memory dataset with
# warnings.catch_warnings, which is not thread-safe: under dask threads it leaks.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.features")


@dataclass(frozen=True)
class ZonePayload:
    """Polygons of the finest level in the grid CRS, with their zone index (1..n)."""

    geometries: np.ndarray  # shapely geometries
    bounds: np.ndarray  # (n, 4) minx, miny, maxx, maxy

    @classmethod
    def from_layer(cls, layer: ZoneLayer) -> "ZonePayload":
        geoms = np.asarray(layer.geometry_grid_crs.values, dtype=object)
        return cls(geometries=geoms, bounds=shapely.bounds(geoms))

    @property
    def n_zones(self) -> int:
        return len(self.geometries)

    @property
    def dtype(self) -> str:
        """Smallest integer type holding every zone index (uint16 halves the memory traffic)."""
        return "uint16" if self.n_zones < 65535 else "int32"

    def rasterize(self, window_grid: Grid) -> np.ndarray:
        """Zone index of every cell of ``window_grid`` (0 outside all units), cell-centre rule."""
        left, bottom, right, top = window_grid.bounds
        b = self.bounds
        hit = np.flatnonzero((b[:, 0] < right) & (b[:, 2] > left) & (b[:, 1] < top) & (b[:, 3] > bottom))
        if hit.size == 0:
            return np.zeros(window_grid.shape, dtype=self.dtype)
        return rasterize(
            ((self.geometries[k], int(k) + 1) for k in hit),
            out_shape=window_grid.shape, transform=window_grid.transform, fill=0, dtype=self.dtype,
        )


def exact_zone_class_area(raster_path, band: int, layer: ZoneLayer, grid: Grid, columns: ClassColumns, scale_bits: int, nodata: int | None) -> np.ndarray:
    """Coverage-weighted (zone x class) area cross-tab with exactextract (int64 fixed point).

    Each cell contributes ``coverage_fraction * true_cell_area`` (``lucr.area``); the
    row of a cell is found from its centre y. Row 0 (outside all units) is left 0: the
    caller derives it from the grid totals.
    """
    from exactextract import exact_extract  # only the exact engine needs it

    fill = nodata if nodata is not None else int(np.iinfo(np.int64).min)
    frame = layer.frame.set_geometry(layer.geometry_grid_crs.values).set_crs(grid.crs, allow_override=True)
    ops = [f"coverage(default_value={fill})", f"values(default_value={fill})", f"center_y(default_value={fill})"]
    try:
        res = exact_extract(str(raster_path), frame[["unit_id", "geometry"]], ops, output="pandas", include_cols=["unit_id"])
    except RuntimeError as exc:
        raise InputFileError(f"exactextract could not process the raster ({exc})", path=raster_path, fix="use engine: fast") from None
    prefix = f"band_{band}_" if f"band_{band}_coverage" in res.columns else ""  # multi-band rasters: one set per band
    class_of_code, code_offset, n_cols = columns.class_of_code, columns.offset, columns.n_columns
    row_area_ha = row_cell_area_ha(grid)
    out = np.zeros((len(frame) + 1, n_cols), dtype=np.int64)
    t = grid.transform
    for k, (cov, values, cy) in enumerate(zip(res[prefix + "coverage"], res[prefix + "values"], res[prefix + "center_y"]), start=1):
        values = np.asarray(values, dtype=np.int64)
        rows = np.floor((np.asarray(cy) - t.f) / t.e).astype(np.int64)
        weight = np.asarray(cov, dtype=np.float64) * row_area_ha[rows]
        idx = values - code_offset
        inside = (idx >= 0) & (idx < class_of_code.shape[0])
        cols = np.where(inside, class_of_code[np.clip(idx, 0, class_of_code.shape[0] - 1)], n_cols - 1)
        out[k] = to_fixed_point(np.bincount(cols, weights=weight, minlength=n_cols), scale_bits)
    return out


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
    outside = shapely.difference(geoms, shapely.box(*grid.bounds))
    return geometry_areas_ha(geoms, grid.crs), geometry_areas_ha(outside, grid.crs)


def numeric_columns(class_codes) -> list[str]:
    """The numeric columns of :func:`unit_table` (what an analysis may name)."""
    return ["area_ha", "valid_fraction", *[f"area_ha_class_{c}" for c in class_codes], "source_tc", "sink_tc", "net_tc", "net_tc_per_ha", "cbc", "polygon_area_ha"]


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


def unit_table(layer: ZoneLayer, area_ha_cols: np.ndarray, coefs: np.ndarray, class_codes: np.ndarray, grid: Grid, flux_raster=None):
    """The documented zonal table of one level (one row per unit).

    Parameters
    ----------
    layer : the units (ids, names, parent ids, geometry)
    area_ha_cols : (n_units, K + 2) area (ha) per class, then unknown, then nodata
    coefs : (K,) flux coefficients, t C / ha / yr (sources positive)
    class_codes : (K,) land-cover codes of the classes

    Columns: ``unit_id, name, parent_id, level, area_ha, valid_fraction,
    area_ha_class_<code>..., source_tc, sink_tc, net_tc, net_tc_per_ha, cbc,
    polygon_area_ha`` (and ``flux_raster_area_ha`` with a flux raster); fluxes in t C / yr,
    sinks negative; ``flux_raster``: :class:`lucr.products.raster_sums.RasterSums` of the units. ``cbc`` is the carbon
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
    frame = layer.frame[["unit_id", "name", "parent_id"]].copy()
    frame["level"] = layer.level
    frame["area_ha"] = area_ha
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["valid_fraction"] = np.where(area_ha > 0, valid_ha / area_ha, 0.0)
        net = source + sink
        for j, code in enumerate(class_codes):
            frame[f"area_ha_class_{code}"] = known[:, j]
        frame["source_tc"] = source
        frame["sink_tc"] = sink
        frame["net_tc"] = net
        frame["net_tc_per_ha"] = np.where(valid_ha > 0, net / valid_ha, np.nan)
        frame["cbc"] = np.where(sink < 0, source / -sink, np.nan)
    frame["polygon_area_ha"] = polygon_ha
    if flux_raster is not None:
        frame["flux_raster_area_ha"] = flux_raster.area[:, :k].sum(axis=1)
    frame["geometry"] = layer.frame.geometry.values
    return frame.set_geometry("geometry", crs=layer.frame.crs)

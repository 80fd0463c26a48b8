"""Reduction: per-(zone, class) sums of a value raster that replaces a class parameter per cell.

Methods.md §8 (seed 004's review of sink methods): a user's flux raster (t C / ha / yr, e.g.
NEP from CASA) or carbon-density raster (t C / ha) is used in place of the class
coefficient wherever it has a value. The pass sums, per zone and class column, the
raster's positive and negative ``value * true cell area`` and the area it covers; the
tables then take the class coefficients over the remaining area
(:func:`lucr.zonal.unit_table`). Sums are float64 (not fixed point): they agree across
chunkings to ~1e-15 relative, not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lucr.chunk import Chunk
from lucr.kernels.raster_sums import accumulate_zone_class_values
from lucr.legend import ClassColumns
from lucr.products.base import RunContext


@dataclass(frozen=True)
class RasterSums:
    """``pos``, ``neg``: sums of value x area (per-ha unit x ha) split by sign; ``area``: covered ha; rows x class columns."""

    pos: np.ndarray
    neg: np.ndarray
    area: np.ndarray

    def take(self, rows) -> "RasterSums":
        return RasterSums(self.pos[rows], self.neg[rows], self.area[rows])

    def total(self) -> "RasterSums":
        """All rows summed (one row)."""
        return RasterSums(self.pos.sum(axis=0)[None], self.neg.sum(axis=0)[None], self.area.sum(axis=0)[None])

    def map_rows(self, fn) -> "RasterSums":
        """Apply ``fn`` (e.g. aggregation to parents) to each array."""
        return RasterSums(fn(self.pos), fn(self.neg), fn(self.area))


def flux_name(date) -> str:
    return f"flux-raster-{date}"


def stock_name(date) -> str:
    return f"stock-raster-{date}"


def centre_areas_name(date) -> str:
    """Per-(zone, class) areas by cell centre (exact engine with an allocation: the map's denominators)."""
    return f"centre-areas-{date}"


def weights_name(date) -> str:
    """The per-(zone, class) sums of the allocation's covariate raster (``weight x area``), one date."""
    return f"weight-raster-{date}"


def stock_key(ctx: RunContext, date) -> str:
    """The pass's raster key of the stock raster of a date (one raster for all dates, or one per date)."""
    return f"stock_{date}" if f"stock_{date}" in ctx.rasters else "stock"


class RasterByZoneClass:
    """Sums of one value raster per (zone, class) of one date (``raster`` None: a raster of ones, so
    ``pos`` is the area). ``centre``: each cell in the unit holding its centre, also with the exact
    engine (the allocation map's cells belong to one unit each)."""

    order_free = False  # float sums: their last bits follow the grouping, kept the same as on local threads

    def __init__(self, name: str, raster: str | None, date, columns: ClassColumns, n_zones: int, nodata: float | None, factor: float = 1.0, centre: bool = False):
        self.name, self.raster, self.date = name, raster, date
        self.columns, self.n_zones, self.nodata, self.factor, self.centre = columns, n_zones, nodata, factor, centre

    def chunk(self, chunk: Chunk):
        shape = (self.n_zones + 1, self.columns.n_columns)
        pos, neg, area = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        values = chunk.rasters[self.raster] if self.raster is not None else np.ones(chunk.zones.shape, np.float32)
        accumulate_zone_class_values(
            chunk.codes[self.date], chunk.zones, values, self.nodata is not None, 0.0 if self.nodata is None else self.nodata,
            chunk.row_area_ha, self.columns.class_of_code, self.columns.offset, pos, neg, area,
        )
        if not self.centre and chunk.edges is not None and len(chunk.edges):  # exact engine: boundary cells by coverage fraction
            e = chunk.edges
            v = chunk.rasters[self.raster][e.rows, e.cols].astype(np.float64)
            ok = np.isfinite(v) if self.nodata is None else np.isfinite(v) & (v != self.nodata)
            at = (e.zones[ok], self.columns.column_of(chunk.codes[self.date][e.rows[ok], e.cols[ok]]))
            a = e.share[ok] * chunk.row_area_ha[e.rows[ok]]
            np.add.at(area, at, a)
            np.add.at(pos, at, np.where(v[ok] > 0, v[ok] * a, 0.0))
            np.add.at(neg, at, np.where(v[ok] > 0, 0.0, v[ok] * a))
        return pos, neg, area

    def combine(self, parts):
        return tuple(sum(p[i] for p in parts) for i in range(3))

    def finalize(self, total) -> RasterSums:
        pos, neg, area = total
        return RasterSums(pos * self.factor, neg * self.factor, area)


def declare(ctx: RunContext) -> list[RasterByZoneClass]:
    n_zones = len(ctx.layers[-1].frame) if ctx.layers else 0
    out = []
    if "flux" in ctx.rasters:
        factor = ctx.config.flux_raster.factor
        out += [RasterByZoneClass(flux_name(lc.year), "flux", lc.year, ctx.columns[lc.year], n_zones, ctx.rasters["flux"].nodata, factor) for lc in ctx.dates]
    if any(k == "stock" or k.startswith("stock_") for k in ctx.rasters):
        for lc in ctx.dates:
            key = stock_key(ctx, lc.year)
            out.append(RasterByZoneClass(stock_name(lc.year), key, lc.year, ctx.columns[lc.year], n_zones, ctx.rasters[key].nodata))
    centre = ctx.engine == "exact"  # the allocation map gives each cell to the unit of its centre: its denominators count cells so
    if "weights" in ctx.rasters:  # the allocation's covariate: its sums per (zone, class) are the denominators of the second pass
        out += [RasterByZoneClass(weights_name(lc.year), "weights", lc.year, ctx.columns[lc.year], n_zones, ctx.rasters["weights"].nodata, centre=centre) for lc in ctx.dates]
    s = ctx.config.statistics
    if centre and s is not None and s.allocate and s.level is not None and ctx.layers:
        out += [RasterByZoneClass(centre_areas_name(lc.year), None, lc.year, ctx.columns[lc.year], n_zones, None, centre=True) for lc in ctx.dates]
    return out

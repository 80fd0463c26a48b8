"""Reduction: the (zone x class) area cross-tab of each date, and a code histogram.

Every zonal table of lucr (class areas, sources, sinks, net flux, valid fraction) is
derived from this small cross-tab times a parameter table (methods.md §1:
``flux = coef[class] * area_ha``), so the raster is walked once. Areas are int64 fixed
point (:mod:`lucr.area`): sums are associative, so the cross-tab is bit-identical whatever
the chunking, the reduction order or the scheduler. Columns follow
:class:`lucr.legend.ClassColumns` (classes, unknown, nodata); row 0 is the area outside
every unit, rows 1..n the zones of the finest level.
"""

from __future__ import annotations

import numpy as np

from lucr.chunk import Chunk, DateKey, EdgeCells
from lucr.kernels.crosstab import accumulate_zone_class_area
from lucr.legend import ClassColumns
from lucr.products.base import RunContext, merge_sparse


def reduction_name(date: DateKey) -> str:
    """Name of the cross-tab reduction of a date (its result's key)."""
    return "zone-class-area" if date is None else f"zone-class-area-{date}"


class ZoneClassArea:
    """(n_zones + 1) x (K + 2) int64 fixed-point areas and the cell count of every code, for one date.

    Partials are sparse, ``(zone * (K + 2) + column, area)`` for the pairs a chunk holds, so
    they stay small whatever the number of units; ``finalize`` makes the dense cross-tab.
    """

    order_free = True  # int64 sums: the same bits in any grouping

    def __init__(self, date: DateKey, columns: ClassColumns, n_zones: int):
        self.name = reduction_name(date)
        self.date = date
        self.columns = columns
        self.n_zones = n_zones

    def chunk(self, chunk: Chunk):
        n_cols = self.columns.n_columns
        code_count = np.zeros(self.columns.class_of_code.shape[0], dtype=np.int64)
        scratch = np.full(self.n_zones + 1, -1, np.int64)
        codes = chunk.codes[self.date]
        e = chunk.edges if chunk.edges is not None else EdgeCells.empty()  # exact engine: boundary cells by coverage fraction
        zone_ids, area = accumulate_zone_class_area(
            codes, chunk.zones, chunk.row_area_fx, self.columns.class_of_code, self.columns.offset, n_cols, scratch, code_count,
            e.rows, e.cols, e.zones, e.area_fx,
        )
        local, col = np.nonzero(area)  # zone ids are unique: so are the keys
        keys = zone_ids[local] * n_cols + col
        order = np.argsort(keys)
        return keys[order], area[local, col][order], code_count

    def combine(self, parts):
        keys, areas = merge_sparse(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        count = parts[0][2].copy()
        for p in parts[1:]:
            count += p[2]
        return keys, areas, count

    def finalize(self, total):
        keys, areas, count = total
        n_cols = self.columns.n_columns
        area_fx = np.zeros((self.n_zones + 1, n_cols), dtype=np.int64)
        area_fx[keys // n_cols, keys % n_cols] = areas  # keys are unique
        return area_fx, count


def declare(ctx: RunContext) -> list[ZoneClassArea]:
    """One cross-tab per date (rows: zones of the finest level; cell-centre rule, or coverage fractions with the exact engine)."""
    n_zones = len(ctx.layers[-1].frame) if ctx.layers else 0
    return [ZoneClassArea(lc.year, ctx.columns[lc.year], n_zones) for lc in ctx.dates]

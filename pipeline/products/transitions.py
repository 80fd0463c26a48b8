"""Reduction: sparse (zone, class at t1, class at t2) areas between two dates (methods.md §3).

The transition (change) matrix of every unit comes out of the same pass as the class
areas. Partials stay small whatever the number of zones: each chunk keeps only the
non-zero (zone, from, to) entries (:mod:`lucr.kernels.transitions`), as int64 fixed-point
areas keyed by ``(zone * n_cols + from) * n_cols + to``; partials merge by key.
Columns follow :class:`lucr.legend.ClassColumns` (classes, unknown, nodata).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lucr.chunk import Chunk
from lucr.kernels.transitions import accumulate_transitions
from lucr.legend import ClassColumns
from lucr.products.base import RunContext, merge_sparse


@dataclass(frozen=True)
class SparseTransitions:
    """Non-zero transition areas of one interval: parallel arrays sorted by (zone, from, to)."""

    year_from: int | None
    year_to: int | None
    zone: np.ndarray  # int64 zone index (0 outside every unit)
    col_from: np.ndarray  # int64 cross-tab column at the first date
    col_to: np.ndarray  # int64 cross-tab column at the second date
    area_fx: np.ndarray  # int64 fixed-point area
    n_cols: int

    def dense(self, n_zones: int) -> np.ndarray:
        """``(n_zones + 1, n_cols, n_cols)`` int64 fixed-point areas (for few zones)."""
        out = np.zeros((n_zones + 1, self.n_cols, self.n_cols), np.int64)
        np.add.at(out, (self.zone, self.col_from, self.col_to), self.area_fx)
        return out


def intervals(years: list) -> list[tuple]:
    """Date pairs whose transitions a run computes: consecutive dates, and first -> last when there are more than two."""
    pairs = list(zip(years[:-1], years[1:]))
    if len(years) > 2:
        pairs.append((years[0], years[-1]))
    return pairs


def reduction_name(year_from, year_to) -> str:
    return f"transitions-{year_from}-{year_to}"


class Transitions:
    """The sparse transition areas of one interval (two dates of the run)."""

    order_free = True  # int64 fixed-point sums: the same bits in any grouping

    def __init__(self, year_from, year_to, columns_from: ClassColumns, columns_to: ClassColumns, n_zones: int):
        self.name = reduction_name(year_from, year_to)
        self.year_from, self.year_to = year_from, year_to
        self.columns_from, self.columns_to = columns_from, columns_to
        self.n_cols = columns_from.n_columns
        self.n_zones = n_zones

    def chunk(self, chunk: Chunk):
        scratch = np.full(self.n_zones + 1, -1, np.int64)
        cf, ct = self.columns_from, self.columns_to
        zone_ids, area = accumulate_transitions(
            chunk.codes[self.year_from], chunk.codes[self.year_to], chunk.zones, chunk.row_area_fx,
            cf.class_of_code, cf.offset, ct.class_of_code, ct.offset, self.n_cols, scratch,
        )
        local, c1, c2 = np.nonzero(area)
        keys = (zone_ids[local] * self.n_cols + c1) * self.n_cols + c2
        areas = area[local, c1, c2]
        if chunk.edges is not None and len(chunk.edges):  # exact engine: boundary cells by coverage fraction
            e = chunk.edges
            e1 = cf.column_of(chunk.codes[self.year_from][e.rows, e.cols])
            e2 = ct.column_of(chunk.codes[self.year_to][e.rows, e.cols])
            keys = np.concatenate([keys, (e.zones.astype(np.int64) * self.n_cols + e1) * self.n_cols + e2])
            areas = np.concatenate([areas, e.area_fx])
        return merge_sparse(keys, areas)  # a boundary cell's correction may cancel its cell-centre entry

    def combine(self, parts):
        return merge_sparse(np.concatenate([k for k, _ in parts]), np.concatenate([a for _, a in parts]))

    def finalize(self, total) -> SparseTransitions:
        keys, areas = total
        n = self.n_cols
        return SparseTransitions(self.year_from, self.year_to, keys // (n * n), (keys // n) % n, keys % n, areas, n)


def declare(ctx: RunContext) -> list[Transitions]:
    """One reduction per interval of a multi-date run with a ``change`` section."""
    if ctx.config.change is None or not ctx.multi_date:
        return []
    n_zones = len(ctx.layers[-1].frame) if ctx.layers else 0
    years = [lc.year for lc in ctx.dates]
    pairs = intervals(years)
    pairs += [(m.from_year, m.to_year) for m in (sc.markov for sc in ctx.config.change.scenarios) if m is not None and (m.from_year, m.to_year) not in pairs]
    return [Transitions(a, b, ctx.columns[a], ctx.columns[b], n_zones) for a, b in pairs]

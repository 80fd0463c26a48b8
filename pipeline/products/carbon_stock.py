"""Map products: carbon stock density of each date and its change between dates (methods.md §4).

``carbon_stock[_<year>]``: bands ``c_above, c_below, c_soil, c_dead, total`` (t C / ha) of
the pool table (InVEST's four pools); ``sequestration_<t1>_<t2>``: ``total(t2) - total(t1)``
(t C / ha, negative where carbon was lost), as InVEST's sequestration map per hectare.
NaN where a date has no data or a class has no pools. Declared when ``change.pools`` is
given (and ``stock`` / ``sequestration`` are in ``change.maps``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lucr.chunk import Chunk
from lucr.change.stocks import POOLS
from lucr.products.base import MapProduct, RunContext
from lucr.products.transitions import intervals

UNIT = "t C / ha"


def _stock_block(chunk: Chunk, date, lut: np.ndarray, offset: int) -> np.ndarray:
    """(5, rows, cols) float32: the four pools and their total, looked up per code."""
    k = chunk.codes[date].astype(np.int64) - offset
    return np.moveaxis(lut[k], -1, 0)


def _sequestration_block(chunk: Chunk, first, last, lut_first: np.ndarray, offset_first: int, lut_last: np.ndarray, offset_last: int) -> np.ndarray:
    a = lut_first[chunk.codes[first].astype(np.int64) - offset_first]
    b = lut_last[chunk.codes[last].astype(np.int64) - offset_last]
    return (b - a)[None]


def _density_lut(ctx: RunContext, date) -> tuple[np.ndarray, int]:
    """Dense ``code -> (c_above, c_below, c_soil, c_dead, total)`` float32 table of a date (NaN: no pools)."""
    cols = ctx.columns[date]
    per_class = np.concatenate([ctx.pools, ctx.pools.sum(axis=1, keepdims=True)], axis=1)
    lut = np.stack([cols.lut(per_class[:, b]) for b in range(per_class.shape[1])], axis=-1)
    return lut, cols.offset


def declare(ctx: RunContext) -> list[MapProduct]:
    change = ctx.config.change
    if ctx.pools is None or change is None:
        return []
    products = []
    if "stock" in change.maps:
        for lc in ctx.dates:
            lut, offset = _density_lut(ctx, lc.year)
            products.append(MapProduct(
                name=f"carbon_stock{ctx.suffix(lc.year)}", bands=(*POOLS, "total"), dtype="float32", nodata=np.nan, units=UNIT,
                block=partial(_stock_block, date=lc.year, lut=lut, offset=offset),
                description=f"carbon stock density per pool of {lc.path.name}", tags={"lucr_year": str(lc.year or "")},
            ))
    if "sequestration" in change.maps and ctx.multi_date:
        for a, b in intervals([lc.year for lc in ctx.dates]):
            (la, oa), (lb, ob) = _density_lut(ctx, a), _density_lut(ctx, b)
            products.append(MapProduct(
                name=f"sequestration_{a}_{b}", bands=("sequestration",), dtype="float32", nodata=np.nan, units=UNIT,
                block=partial(_sequestration_block, first=a, last=b, lut_first=la[:, 4], offset_first=oa, lut_last=lb[:, 4], offset_last=ob),
                description=f"carbon stock change {a} -> {b}", tags={"lucr_year_from": str(a), "lucr_year_to": str(b)},
            ))
    return products

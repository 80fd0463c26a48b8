"""Map products: carbon stock density of each date and its change between dates (methods.md §4).

``carbon_stock[_<year>]``: bands ``c_above, c_below, c_soil, c_dead, total`` (t C / ha) of
the pool table (InVEST's four pools); ``sequestration_<t1>_<t2>``: ``total(t2) - total(t1)``
(t C / ha, negative where carbon was lost), as InVEST's sequestration map per hectare.
NaN where a date has no data or a class has no pools. With ``change.stock_raster`` its value
is the total where it has one (pool bands NaN there). Declared when ``change.pools`` is
given (and ``stock`` / ``sequestration`` are in ``change.maps``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lucr.chunk import Chunk
from lucr.kernels.lookup import lookup_difference
from lucr.change.stocks import POOLS
from lucr.products.base import MapProduct, RunContext
from lucr.products.carbon_balance import override_values
from lucr.products.raster_sums import stock_key
from lucr.products.transitions import intervals
from lucr.units import factor



def _stock_block(chunk: Chunk, date, lut: np.ndarray, offset: int, raster: str | None = None, nodata: float | None = None) -> np.ndarray:
    """(5, rows, cols) float32: the four pools and their total, looked up per code (the stock
    raster's value as the total, pools NaN, where it has a value)."""
    k = chunk.codes[date].astype(np.int64) - offset
    out = np.moveaxis(lut[k], -1, 0).copy()
    if raster is not None:
        v = override_values(chunk.rasters[raster], nodata)
        valid = np.isfinite(v) & np.isfinite(out[4])
        out[:4][:, valid] = np.nan
        out[4] = np.where(valid, v, out[4])
    return out


def _total(chunk: Chunk, date, lut: np.ndarray, offset: int, raster: str | None, nodata: float | None) -> np.ndarray:
    """Total stock density (t C / ha) of one date: one lookup in the total column only."""
    codes = chunk.codes[date]
    total = np.ascontiguousarray(lut[:, 4])[codes if offset == 0 else codes.astype(np.int64) - offset]
    if raster is not None:
        v = override_values(chunk.rasters[raster], nodata)
        total = np.where(np.isfinite(v) & np.isfinite(total), v, total)
    return total


def _sequestration_block(chunk: Chunk, first, last, lut_first, offset_first, lut_last, offset_last, raster_first=None, nodata_first=None, raster_last=None, nodata_last=None) -> np.ndarray:
    if raster_first is None and raster_last is None:  # the common case: one fused lookup kernel
        out = np.empty((1,) + chunk.shape, np.float32)
        lookup_difference(chunk.codes[first], np.ascontiguousarray(lut_first[:, 4]), offset_first,
                          chunk.codes[last], np.ascontiguousarray(lut_last[:, 4]), offset_last, out[0])
        return out
    a = _total(chunk, first, lut_first, offset_first, raster_first, nodata_first)
    b = _total(chunk, last, lut_last, offset_last, raster_last, nodata_last)
    return (b - a)[None]


def _raster_of(ctx: RunContext, date) -> dict:
    """Keyword arguments naming the stock raster of a date, if the run has one."""
    if not any(k == "stock" or k.startswith("stock_") for k in ctx.rasters):
        return {"raster": None, "nodata": None}
    key = stock_key(ctx, date)
    return {"raster": key, "nodata": ctx.rasters[key].nodata}


def _density_lut(ctx: RunContext, date) -> tuple[np.ndarray, int]:
    """Dense ``code -> (c_above, c_below, c_soil, c_dead, total)`` float32 table of a date (NaN: no pools)."""
    cols = ctx.columns[date]
    per_class = np.concatenate([ctx.pools, ctx.pools.sum(axis=1, keepdims=True)], axis=1)
    lut = np.stack([cols.lut(per_class[:, b]) for b in range(per_class.shape[1])], axis=-1)
    return lut, cols.offset


def _scaled(chunk, block, to_units: float) -> np.ndarray:
    """A block in the output unit (t CO2 / ha: x 44/12); unchanged for t C."""
    out = block(chunk)
    return out if to_units == 1.0 else out * np.float32(to_units)


def declare(ctx: RunContext) -> list[MapProduct]:
    change = ctx.config.change
    if ctx.pools is None or change is None:
        return []
    units = ctx.config.output.units
    unit, to_units = f"{units} / ha", factor(units)
    products = []
    if "stock" in change.maps:
        for lc in ctx.dates:
            lut, offset = _density_lut(ctx, lc.year)
            products.append(MapProduct(
                name=f"carbon_stock{ctx.suffix(lc.year)}", bands=(*POOLS, "total"), dtype="float32", nodata=np.nan, units=unit,
                block=partial(_scaled, block=partial(_stock_block, date=lc.year, lut=lut, offset=offset, **_raster_of(ctx, lc.year)), to_units=to_units),
                description=f"carbon stock density per pool of {lc.path.name}", tags={"lucr_year": str(lc.year or "")},
            ))
    if "sequestration" in change.maps and ctx.multi_date:
        for a, b in intervals([lc.year for lc in ctx.dates]):
            (la, oa), (lb, ob) = _density_lut(ctx, a), _density_lut(ctx, b)
            ra, rb = _raster_of(ctx, a), _raster_of(ctx, b)
            products.append(MapProduct(
                name=f"sequestration_{a}_{b}", bands=("sequestration",), dtype="float32", nodata=np.nan, units=unit,
                block=partial(_scaled, block=partial(
                    _sequestration_block, first=a, last=b, lut_first=la, offset_first=oa, lut_last=lb, offset_last=ob,
                    raster_first=ra["raster"], nodata_first=ra["nodata"], raster_last=rb["raster"], nodata_last=rb["nodata"],
                ), to_units=to_units),
                description=f"carbon stock change {a} -> {b}", tags={"lucr_year_from": str(a), "lucr_year_to": str(b)},
            ))
    return products

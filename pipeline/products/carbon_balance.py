"""Map product: the carbon-balance density map of each date (methods.md §1).

Bands ``source`` (>= 0), ``sink`` (<= 0) and ``net`` (= source + sink), each the flux
density ``coef[class]`` in t C / ha / yr of the coefficient table (seed 001 Table 2 and the
flagged defaults of ``configs/parameters``), or the flux raster's value where one is given
and has a value (methods.md §8); NaN where there is no data or no coefficient.
A cell's flux in t C / yr is the density times its true area (:mod:`lucr.area`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from lucr.chunk import Chunk, DateKey
from lucr.kernels.lookup import flux_density_bands
from lucr.products.base import MapProduct, RunContext
from lucr.units import density_label, factor

BANDS = ("source", "sink", "net")


def style_entries(table, units: str) -> list[tuple[float, str]]:
    """Legend entries of the map's net band: each coefficient value (in ``units``) with the classes that have it."""
    by_value: dict[float, list[str]] = {}
    for c in table.classes:
        by_value.setdefault(float(np.float32(c.coef * factor(units))), []).append(c.name)
    return [(v, f"{v:+.3g} {density_label(units)}: {', '.join(names[:4])}{f' and {len(names) - 4} more' if len(names) > 4 else ''}") for v, names in by_value.items()]


def flux_density_block(codes: np.ndarray, coef_lut: np.ndarray, code_offset: int) -> np.ndarray:
    """``(3, rows, cols)`` float32 source/sink/net density of one block of class codes."""
    out = np.empty((3,) + codes.shape, dtype=np.float32)
    flux_density_bands(codes, coef_lut, code_offset, out)
    return out


def inside_units(chunk: Chunk) -> np.ndarray:
    """Cells of the chunk inside some unit: its centre in one, or (exact engine) any part covered by one."""
    inside = chunk.zones != 0
    edges = chunk.edges
    if edges is not None and len(edges):
        covered = (edges.share > 0) & (edges.zones != 0)
        inside[edges.rows[covered], edges.cols[covered]] = True
    return inside


def _block(chunk: Chunk, date: DateKey, coef_lut: np.ndarray, code_offset: int, raster: str | None = None, nodata: float | None = None,
           factor: float = 1.0, units_only: bool = False) -> np.ndarray:
    out = flux_density_block(chunk.codes[date], coef_lut, code_offset)
    if units_only:  # output.map_extent: units
        out[:, ~inside_units(chunk)] = np.nan
    if raster is not None:  # the flux raster replaces the coefficient where it has a value and the cell a class
        v = override_values(chunk.rasters[raster], nodata, factor)
        valid = np.isfinite(v) & np.isfinite(out[2])
        out[2] = np.where(valid, v, out[2])
        out[0] = np.where(valid, np.maximum(v, 0), out[0])
        out[1] = np.where(valid, np.minimum(v, 0), out[1])
    return out


def override_values(raw: np.ndarray, nodata: float | None, factor: float = 1.0) -> np.ndarray:
    """float32 values of a value raster times ``factor``, NaN at its nodata value (as the pass's sums skip them)."""
    v = raw.astype(np.float64) * factor
    if nodata is not None:
        v[raw.astype(np.float64) == nodata] = np.nan
    return v.astype(np.float32)


def declare(ctx: RunContext) -> list[MapProduct]:
    """``carbon_balance[_<year>]`` for every date, unless ``output.map`` is off."""
    if not ctx.config.output.map:
        return []
    products = []
    units = ctx.config.output.units
    to_units = factor(units)  # t C -> the output unit (lucr.units)
    flux = ctx.rasters.get("flux")
    override = {} if flux is None else {"raster": "flux", "nodata": flux.nodata, "factor": ctx.config.flux_raster.factor * to_units}
    extent = ctx.config.output.map_extent or ("units" if ctx.layers else "raster")
    override["units_only"] = extent == "units" and bool(ctx.layers)
    for lc in ctx.dates:
        cols = ctx.columns[lc.year]
        tags = {
            "lucr_legend": ctx.table.legend, "lucr_table_sha256": ctx.table.digest(), "lucr_sign": "sources positive, sinks negative",
            "lucr_source_raster": lc.path.name, "lucr_year": str(lc.year or ""),  # a file name: no machine's absolute paths in a shared map
            "lucr_extent": "cells inside the units (others no data)" if override["units_only"] else "every cell of the raster",
        }
        products.append(MapProduct(
            name=f"carbon_balance{ctx.suffix(lc.year)}", bands=BANDS, dtype="float32", nodata=np.nan, units=density_label(units),
            block=partial(_block, date=lc.year, coef_lut=cols.lut(ctx.table.coefs * to_units), code_offset=cols.offset, **override),
            description=f"carbon flux density (source, sink, net) of {lc.path.name}", tags=tags,
        ))
    return products

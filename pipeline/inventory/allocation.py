"""Statistical totals onto pixels (methods.md §2): each unit's built-up energy emissions onto
its built-up cells, its farm-input emissions and crop uptake onto its cropland cells.

Area-weighted: a cell of the matching category in unit u gets the density
``T_u / A_u`` (t C / ha / yr), ``A_u`` the unit's area of that category from the zonal pass
(the same date), so the cells of a unit add up to its total. Crop uptake is a sink
(negative). Other cells are no data in that band. A unit with a total but no cell of the
category is reported as unallocated (warning, run summary), never spread elsewhere.

The map needs the areas of the pass, so it is written by a second pass over the land cover
(a lookup by zone and class per cell; no cross-tab). A boundary cell takes the density of
the unit holding its centre: with the fast engine (cell centres) the map's sums per unit
reproduce the totals exactly; with the exact engine the areas ``A_u`` are exact and a
boundary cell's share may lie in a neighbour, so a unit's map sum differs from its total by
at most its boundary cells of the category (measured and recorded in the summary).
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd

from lucr.products.base import MapProduct
from lucr.units import density_label, factor

log = logging.getLogger("lucr")

#: component -> (land-use category of its cells, sign of the density)
ALLOCATED = {"builtup_emission_tc": ("built_up", 1.0), "farm_input_emission_tc": ("cropland", 1.0), "crop_uptake_tc": ("cropland", -1.0)}
BANDS = tuple(name.removesuffix("_tc") for name in ALLOCATED)


def allocated_name(suffix: str) -> str:
    return f"inventory_allocated{suffix}"


def finest_to_level(layers, level: str) -> np.ndarray:
    """For each finest unit (zone index - 1), the row of its ancestor in ``level`` (-1: none)."""
    names = [lay.level for lay in layers]
    i = names.index(level)
    rows = np.arange(len(layers[i].frame))
    for coarse, fine in zip(layers[i:-1], layers[i + 1:]):
        position = dict(zip(coarse.frame["unit_id"], rows))
        rows = np.array([position.get(p, -1) for p in fine.frame["parent_id"]], dtype=np.int64)
    return rows


def densities(totals: pd.DataFrame, zonal: pd.DataFrame, table) -> tuple[np.ndarray, dict]:
    """``(3, n_units, K)`` t C / ha / yr per unit (rows of ``zonal``) and class, and the unallocated totals.

    ``totals``: the statistics of one year by unit id (columns of :data:`ALLOCATED`);
    ``zonal``: the level's zonal table of the same date (``unit_id``, ``area_ha_class_<code>``).
    """
    codes = [c.code for c in table.classes]
    area = np.stack([zonal[f"area_ha_class_{code}"].to_numpy(float) for code in codes], axis=1)
    out = np.full((len(ALLOCATED), len(zonal), len(codes)), np.nan)
    unallocated: dict[str, dict[str, float]] = {}
    by_id = totals.reindex(zonal["unit_id"].to_numpy())
    for b, (component, (category, sign)) in enumerate(ALLOCATED.items()):
        if component not in by_id:
            continue
        in_category = np.array([c.category == category for c in table.classes])
        a = area[:, in_category].sum(axis=1)
        t = by_id[component].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(a > 0, sign * t / a, np.nan)
        out[b][:, in_category] = d[:, None]
        lost = (a <= 0) & np.isfinite(t) & (t > 0)
        if lost.any():
            unallocated[component] = dict(zip(zonal["unit_id"].to_numpy()[lost], t[lost].tolist()))
            log.warning("%s: %d unit(s) have a total but no %s cells; not allocated (kept in the tables): %s",
                        component, int(lost.sum()), category, ", ".join(list(unallocated[component])[:10]))
    return out, unallocated


def _block(chunk, date, matrix: np.ndarray, class_of_code: np.ndarray, offset: int) -> np.ndarray:
    """``(3, rows, cols)`` float64: the density of the cell's unit and class (NaN outside units and categories)."""
    column = class_of_code[chunk.codes[date].astype(np.int64) - offset]
    return matrix[:, chunk.zones, column]


def product(ctx, date, dens: np.ndarray, finest_rows: np.ndarray, suffix: str) -> MapProduct:
    """The allocated density map of one date: bands built-up emission, farm-input emission, crop uptake."""
    cols = ctx.columns[date]
    k = dens.shape[2]
    n_finest = len(finest_rows)
    matrix = np.full((len(ALLOCATED), n_finest + 1, cols.n_columns), np.nan, np.float64)  # zone 0: outside every unit
    inside = finest_rows >= 0
    matrix[:, 1:][:, inside, :k] = dens[:, finest_rows[inside], :] * factor(ctx.config.output.units)
    return MapProduct(  # float64: the cells of a unit add up to its total to 1e-9 (float32 would lose 1e-7)
        name=allocated_name(suffix), bands=BANDS, dtype="float64", nodata=np.nan, units=density_label(ctx.config.output.units),
        block=partial(_block, date=date, matrix=matrix, class_of_code=cols.class_of_code, offset=cols.offset),
        description="statistical totals allocated onto the cells of their land-use category (area-weighted)",
        tags={"lucr_allocation": "area-weighted; built-up energy -> built_up, farm inputs and crop uptake -> cropland; sinks negative"},
    )

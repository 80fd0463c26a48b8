"""Statistical totals onto pixels (methods.md §2): each unit's built-up energy emissions onto
its built-up cells, its farm-input emissions and crop uptake onto its cropland cells.

Area-weighted (default): a cell of the matching category in unit u gets the density
``T_u / A_u`` (t C / ha / yr), ``A_u`` the unit's area of that category from the zonal pass
(the same date), so the cells of a unit add up to its total. Weighted by a covariate raster
``w`` (``statistics.weights``: population density, night lights; resampled onto the grid by
:func:`lucr.io.open_weight_raster`): ``T_u w_cell / W_u`` with ``W_u = sum(w a)`` over the
unit's cells of the category, summed in the first pass (``w <= 0`` or no data: the cell gets
0); a unit whose category cells all have zero weight falls back to area weights (warning).
Crop uptake is a sink (negative). Other cells are no data in that band. A unit with a total
but no cell of the category is reported as unallocated (warning, run summary), never spread
elsewhere.

The map needs the areas of the pass, so it is written by a second pass over the land cover
(a lookup by zone and class per cell; no cross-tab). A boundary cell takes the density of
the unit holding its centre: with the fast engine (cell centres) the map's sums per unit
reproduce the totals exactly; with the exact engine the denominators are summed by cell centre
in the same pass (``centre-areas``, and the covariate's sums likewise), so the map's cells of a
unit (by centre) again add up to its total, while the zonal tables keep their exact
coverage-weighted areas.
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


def level_sums(zone_sums: np.ndarray, finest_rows: np.ndarray, n_units: int) -> np.ndarray:
    """``(n_units, K)`` sums of a level from the pass's ``(n_finest + 1, K)`` zone sums (row 0: outside every unit)."""
    out = np.zeros((n_units, zone_sums.shape[1]))
    inside = finest_rows >= 0
    np.add.at(out, finest_rows[inside], zone_sums[1:][inside])
    return out


def densities(totals: pd.DataFrame, zonal: pd.DataFrame, table, weight_sums: np.ndarray | None = None,
              area_sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per unit (rows of ``zonal``) and class: ``(3, n_units, K)`` the factor each cell's density is
    (t C / ha / yr; times the cell's weight where weighted), ``(3, n_units)`` whether it is weighted,
    and the unallocated totals.

    ``totals``: the statistics of one year by unit id (columns of :data:`ALLOCATED`);
    ``zonal``: the level's zonal table of the same date (``unit_id``, ``area_ha_class_<code>``);
    ``weight_sums``: ``(n_units, K)`` sums of weight x area from the pass (None: area-weighted);
    ``area_sums``: ``(n_units, K)`` class areas by cell centre (exact engine), in place of the table's.
    """
    codes = [c.code for c in table.classes]
    area = area_sums if area_sums is not None else np.stack([zonal[f"area_ha_class_{code}"].to_numpy(float) for code in codes], axis=1)
    out = np.full((len(ALLOCATED), len(zonal), len(codes)), np.nan)
    weighted = np.zeros((len(ALLOCATED), len(zonal)), bool)
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
            if weight_sums is not None:
                w = weight_sums[:, in_category].sum(axis=1)
                weighted[b] = (w > 0) & (a > 0)
                d = np.where(weighted[b], sign * t / w, d)
                fallback = (a > 0) & ~weighted[b] & np.isfinite(t) & (t != 0)
                if fallback.any():
                    log.warning("%s: %d unit(s) have no positive weight on their %s cells; allocated by area there: %s",
                                component, int(fallback.sum()), category, ", ".join(zonal["unit_id"].to_numpy()[fallback][:10]))
        out[b][:, in_category] = d[:, None]
        lost = (a <= 0) & np.isfinite(t) & (t > 0)
        if lost.any():
            unallocated[component] = dict(zip(zonal["unit_id"].to_numpy()[lost], t[lost].tolist()))
            log.warning("%s: %d unit(s) have a total but no %s cells; not allocated (kept in the tables): %s",
                        component, int(lost.sum()), category, ", ".join(list(unallocated[component])[:10]))
    return out, weighted, unallocated


def _block(chunk, date, matrix: np.ndarray, weighted: np.ndarray | None, class_of_code: np.ndarray, offset: int) -> np.ndarray:
    """``(3, rows, cols)`` float64: the density of the cell's unit and class (NaN outside units and
    categories), times the cell's weight where the unit is weighted (no weight, or <= 0: 0)."""
    column = class_of_code[chunk.codes[date].astype(np.int64) - offset]
    out = matrix[:, chunk.zones, column]
    if weighted is not None:
        w = chunk.rasters["weights"].astype(np.float64)
        w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
        out = np.where(weighted[:, chunk.zones], out * w[None], out)
    return out


def product(ctx, date, dens: np.ndarray, finest_rows: np.ndarray, suffix: str, weighted: np.ndarray | None = None) -> MapProduct:
    """The allocated density map of one date: bands built-up emission, farm-input emission, crop uptake
    (``weighted``: per band and level unit, whether the density is times the covariate)."""
    cols = ctx.columns[date]
    k = dens.shape[2]
    n_finest = len(finest_rows)
    matrix = np.full((len(ALLOCATED), n_finest + 1, cols.n_columns), np.nan, np.float64)  # zone 0: outside every unit
    inside = finest_rows >= 0
    matrix[:, 1:][:, inside, :k] = dens[:, finest_rows[inside], :] * factor(ctx.config.output.units)
    by_zone = None
    if weighted is not None and weighted.any():
        by_zone = np.zeros((len(ALLOCATED), n_finest + 1), bool)
        by_zone[:, 1:][:, inside] = weighted[:, finest_rows[inside]]
    how = "area-weighted" if by_zone is None else f"weighted by {ctx.config.statistics.weights.path.name} ({ctx.config.statistics.weights.resampling} resampling)"
    return MapProduct(  # float64: the cells of a unit add up to its total to 1e-9 (float32 would lose 1e-7)
        name=allocated_name(suffix), bands=BANDS, dtype="float64", nodata=np.nan, units=density_label(ctx.config.output.units),
        block=partial(_block, date=date, matrix=matrix, weighted=by_zone, class_of_code=cols.class_of_code, offset=cols.offset),
        description=f"statistical totals allocated onto the cells of their land-use category ({how})",
        tags={"lucr_allocation": f"{how}; built-up energy -> built_up, farm inputs and crop uptake -> cropland; sinks negative"},
    )

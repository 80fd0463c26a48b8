"""The statistics' built-up emissions in place of the raster route's built-up coefficient
(``statistics.builtup: statistics``; methods.md §11).

The unverified +55.8 t C/ha/yr carries most of every source; with statistics, each unit's
built-up energy emissions ``E_u`` (t C / yr) are spread over its built-up cells as the
allocation map does (by area, or by the covariate ``w``): a finest zone f in unit u gets
``E_u W_f,k / W_u`` on its built-up class k, ``W`` the areas (or ``w x area``) the pass summed.
These per-(zone, class) sums take the place of ``coef x area`` for the built-up classes through
the flux-override path of the zonal tables (:func:`lucr.zonal.flux_totals`), so a unit's table
holds ``E_u`` exactly, its parents the sums and its children their shares. The maps of the run
(carbon balance, risk grade) take the same densities in the allocation's second pass. Units
without statistics (or without built-up cells) keep the coefficient; the tables say which
(``builtup_statistics_tc``, NaN where the coefficient stands).
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd

from lucr.products.raster_sums import RasterSums

log = logging.getLogger("lucr")


def builtup_columns(table) -> np.ndarray:
    """Boolean (K,): the built-up classes of the coefficient table."""
    return np.array([c.category == "built_up" for c in table.classes])


def override_sums(emission_by_unit: pd.Series, level_ids: np.ndarray, finest_rows: np.ndarray, area_ha: np.ndarray,
                  weight_sums: np.ndarray | None, table) -> RasterSums:
    """Per zone (row 0 outside every unit, then the finest units) and class: the built-up flux
    (t C / yr, ``pos``) and the area it covers (``area``), from each unit's emission.

    ``emission_by_unit``: t C / yr by unit id of the statistics level; ``level_ids``: the ids of
    that level in row order; ``finest_rows``: each finest unit's row in that level (-1 none);
    ``area_ha``, ``weight_sums``: ``(n_finest, K)`` class areas and ``w x area`` sums of the pass.
    """
    n_finest, k = area_ha.shape
    built = builtup_columns(table)
    weights = weight_sums if weight_sums is not None else area_ha
    inside = finest_rows >= 0
    unit_area, unit_weight = np.zeros(len(level_ids)), np.zeros(len(level_ids))
    np.add.at(unit_area, finest_rows[inside], area_ha[inside][:, built].sum(axis=1))
    np.add.at(unit_weight, finest_rows[inside], weights[inside][:, built].sum(axis=1))
    emission = emission_by_unit.reindex(level_ids).to_numpy(float)
    use_weights = unit_weight > 0  # a unit without weight on its built-up cells: by area, as the allocation does
    pos, area = np.zeros((n_finest + 1, k)), np.zeros((n_finest + 1, k))
    rows = np.flatnonzero(inside)
    u = finest_rows[rows]
    ok = np.isfinite(emission[u]) & (unit_area[u] > 0)
    rows, u = rows[ok], u[ok]
    share = np.where(use_weights[u][:, None], weights[rows][:, built] / np.where(unit_weight[u] > 0, unit_weight[u], 1.0)[:, None],
                     area_ha[rows][:, built] / unit_area[u][:, None])
    block = np.zeros((len(rows), k))
    block[:, built] = emission[u][:, None] * share
    pos[rows + 1] = block
    covered = np.zeros((len(rows), k))
    covered[:, built] = area_ha[rows][:, built]
    area[rows + 1] = covered
    missing = [i for i, e in zip(level_ids, emission) if not np.isfinite(e)]
    if missing:
        log.warning("statistics.builtup: %d unit(s) have no built-up emissions in the statistics and keep the built-up coefficient: %s",
                    len(missing), ", ".join(map(str, missing[:10])))
    return RasterSums(pos, np.zeros_like(pos), area)


def _override_block(chunk, base, allocation, kind: str, breaks=None):
    """A map block of the run with the built-up cells that have a statistics density replaced."""
    out = base(chunk)
    density = allocation(chunk)[0]  # the built-up emission band, output unit / ha / yr; NaN elsewhere
    here = np.isfinite(density)
    if kind == "carbon_balance":
        out[0] = np.where(here, density, out[0])
        out[1] = np.where(here, 0.0, out[1])
        out[2] = np.where(here, density, out[2])
    elif kind == "risk_grade":
        from lucr.analysis.risk import grade

        out[0] = np.where(here, grade(density, breaks), out[0]).astype(out.dtype)
    elif kind == "risk_grade_probability":
        out[0] = np.where(here, 100, out[0]).astype(out.dtype)  # statistics give no range: the grade is certain
    return out


def with_builtup(product, allocation_block, breaks=None):
    """``product`` (a carbon-balance or risk map of the run) with its built-up cells from the statistics."""
    from dataclasses import replace

    kind = next(k for k in ("risk_grade_probability", "risk_grade", "carbon_balance") if product.name.startswith(k))
    tags = {**product.tags, "lucr_builtup": "built-up cells: the statistics' built-up energy emissions allocated onto them (statistics.builtup)"}
    return replace(product, block=partial(_override_block, base=product.block, allocation=allocation_block, kind=kind, breaks=breaks), tags=tags)

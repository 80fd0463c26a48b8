"""Land-use scenarios at the table level: Markov projection and conversion rules (methods.md §3-4).

- **Markov**: each unit's transition-probability matrix from two observed dates,
  ``P_ij = A_ij / sum_j A_ij`` (a class without area keeps its area: identity row), projected
  ``n = (target - t2) / (t2 - t1)`` whole steps from the later date: ``a_target = a_t2 P^n``.
- **Conversion rules**: a share of a class's area turned into another class in the units
  named (``10 % of cropland to forest in units X, Y``), applied to the base date's areas;
  the shares taken from one class of one unit may not exceed 100 %.

Each scenario's class areas give fluxes (class coefficients) and, with pools, stocks, beside
the base date and as differences from it. Scenarios are computed per zone of the finest level
(and the area outside every unit) and summed to each level, so parents are sums of children.
A land-cover raster of a future date (InVEST's alternate map) needs no rule: give it as one more
date under ``landcover.years``.
"""

from __future__ import annotations

import numpy as np


def markov_matrices(transitions: np.ndarray) -> np.ndarray:
    """Row-stochastic ``(n, K, K)`` matrices from transition areas; rows without area are identity rows.

    Examples
    --------
    >>> markov_matrices(np.array([[[3.0, 1.0], [0.0, 0.0]]]))[0].tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    """
    rows = transitions.sum(axis=-1, keepdims=True)
    k = transitions.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(rows > 0, transitions / np.where(rows > 0, rows, 1.0), np.eye(k))
    return p


def project(areas: np.ndarray, matrices: np.ndarray, steps: int) -> np.ndarray:
    """``areas (n, K) @ P^steps`` per unit (areas are conserved: each row of P sums to 1)."""
    out = areas.copy()
    for _ in range(steps):
        out = np.einsum("nk,nkj->nj", out, matrices)
    return out


def convert(areas: np.ndarray, rules: list[tuple[np.ndarray, int, int, float]]) -> np.ndarray:
    """Apply ``(unit mask, from class index, to class index, share)`` rules to the base areas.

    Each share is of the base area of the ``from`` class; raises ``ValueError`` naming the
    first unit whose shares from one class exceed 1.
    """
    taken = np.zeros_like(areas)
    out = areas.copy()
    for mask, i, j, share in rules:
        moved = np.where(mask, areas[:, i] * share, 0.0)
        taken[:, i] += np.where(mask, share, 0.0)
        out[:, i] -= moved
        out[:, j] += moved
    over = np.argwhere(taken > 1.0 + 1e-12)
    if len(over):
        raise ValueError(f"unit row {over[0][0]}: shares taken from class index {over[0][1]} add up to {taken[tuple(over[0])] * 100:.4g} %")
    return out


def check(scenarios, years: list, layers, table) -> None:
    """Refuse, before the pass, scenarios the run cannot compute (naming the scenario and the fix)."""
    from lucr.errors import ConfigError

    codes = set(table.codes.tolist())
    levels = {layer.level: layer for layer in layers}
    for sc in scenarios:
        where = f"change.scenarios '{sc.name}'"
        m = sc.markov
        if m is not None:
            if len(years) < 2:
                raise ConfigError(f"{where}: a Markov projection needs two observed dates; the run has {len(years)}", fix="give two or more dates under landcover.years")
            if m.from_year not in years or m.to_year not in years or m.from_year >= m.to_year:
                raise ConfigError(f"{where}: markov from {m.from_year} to {m.to_year} are not two increasing land-cover years ({years})", fix="name two land-cover years, the earlier first")
            step = m.to_year - m.from_year
            if m.year <= m.to_year or (m.year - m.to_year) % step:
                raise ConfigError(f"{where}: target year {m.year} is not {m.to_year} + n x {step} (n >= 1)", fix=f"choose a year such as {m.to_year + step} or {m.to_year + 2 * step}")
        if sc.base_year is not None and sc.base_year not in years:
            raise ConfigError(f"{where}: base_year {sc.base_year} is not a land-cover year ({years})", fix="name a land-cover year")
        for rule in sc.conversions:
            unknown = sorted({rule.from_class, rule.to_class} - codes)
            if unknown:
                raise ConfigError(f"{where}: class code(s) {unknown} are not classes of legend '{table.legend}' ({sorted(codes)})", fix="use class codes of the legend")
            if rule.units != "all":
                level = rule.level or (layers[-1].level if layers else None)
                if level not in levels:
                    raise ConfigError(f"{where}: level {level!r} is not a zone level ({list(levels)})", fix="name a level of 'zones', or give zones")
                missing = sorted(set(rule.units) - set(levels[level].frame["unit_id"]))
                if missing:
                    raise ConfigError(f"{where}: unit id(s) {missing[:10]} are not ids of level '{level}'", fix=f"use ids of the '{level}' id column")


def zone_rules(scenario, layers, table) -> list[tuple[np.ndarray, int, int, float]]:
    """Conversion rules as ``(mask over zone indices 0..n, from index, to index, share)``.

    ``units: all`` covers every unit (and the whole raster when the run has no zones).
    """
    n_zones = len(layers[-1].frame) if layers else 0
    index = {int(c): i for i, c in enumerate(table.codes)}
    rules = []
    for rule in scenario.conversions:
        mask = np.zeros(n_zones + 1, bool)
        if rule.units == "all":
            mask[1:] = True
            mask[0] = not layers
        else:
            level = rule.level or layers[-1].level
            ids = _finest_ids_under(layers, level, set(rule.units))
            mask[1:] = np.isin(layers[-1].frame["unit_id"].to_numpy(), list(ids))
        rules.append((mask, index[rule.from_class], index[rule.to_class], rule.share))
    return rules


def _finest_ids_under(layers, level: str, ids: set) -> set:
    """Ids of the finest level's units inside the units ``ids`` of ``level``."""
    names = [layer.level for layer in layers]
    for fine in layers[names.index(level) + 1:]:
        ids = set(fine.frame.loc[fine.frame["parent_id"].isin(ids), "unit_id"])
    return ids

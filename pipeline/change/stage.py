"""The land-use change stage of a run: tables of transitions, structure, intensity and carbon stocks.

Inputs come from the single pass: the (zone x class) cross-tab of each date (class
areas; exact-engine rows when that engine runs) and the sparse transitions of each
interval. Each table is written for the whole grid (``_grid``) and for every zone level
(``_<level>s``); parents are exact sums of their children (fixed point).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lucr.area import from_fixed_point
from lucr.change import intensity, stocks, structure
from lucr.change.transitions import long_table, unit_matrices, wide_table
from lucr.change.units import UnitSet, unit_sets
from lucr.errors import CoefficientTableError
from lucr.products.base import RunContext
from lucr.products.raster_sums import stock_key, stock_name
from lucr.products.transitions import intervals, reduction_name

log = logging.getLogger("lucr")

#: Table kinds of the stage (file stems ``<kind>_<label>``) and when they are written.
TABLE_KINDS = {
    "transitions": "multi-date", "transition_matrix": "multi-date", "land_use_structure": "always", "dynamic_degree": "multi-date",
    "intensity_interval": "multi-date", "intensity_category": "multi-date", "intensity_transition": "multi-date",
    "carbon_stock": "pools", "sequestration": "pools, multi-date", "change_carbon": "pools, multi-date", "scenarios": "scenarios",
}


def table_kinds(multi_date: bool, pools: bool, scenarios: bool = False) -> list[str]:
    """The table kinds a run writes (``change`` section given)."""
    return [k for k, when in TABLE_KINDS.items()
            if ("multi-date" not in when or multi_date) and ("pools" not in when or pools) and ("scenarios" not in when or scenarios)]


@dataclass
class ChangeResult:
    """Change tables by stem (``transitions_provinces``), and totals per interval for the summary."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def class_areas(units: UnitSet, date_rows_fx: dict, scale_bits: int, k: int) -> np.ndarray:
    """``(n_units, K)`` class areas (ha) of a level at a date (``date_rows_fx``: level -> fixed-point rows)."""
    return from_fixed_point(date_rows_fx[units.level][:, :k], scale_bits)


def run_stage(ctx: RunContext, totals: dict, rows_fx: dict, plural_of, pool_table=None) -> ChangeResult:
    """All change tables of a run.

    ``rows_fx[year][level]`` holds the fixed-point cross-tab rows of each level at each
    date (level ``grid``: one row, the whole raster); ``pool_table`` is the run's pool table.
    """
    table = ctx.table
    k = table.n_classes
    codes, names = table.codes, [c.name for c in table.classes]
    years = [lc.year for lc in ctx.dates]
    pairs = intervals(years) if ctx.multi_date else []
    result = ChangeResult()
    pools = None
    if ctx.pools is not None:
        present = np.zeros(k, bool)
        for y in years:
            present |= rows_fx[y]["grid"][0, :k] > 0
        pools = stocks.pools_per_class(pool_table, table.classes, present)
    valuation = ctx.config.change.valuation if ctx.config.change is not None else None
    stock_sums = {y: totals[stock_name(y)] for y in years if stock_name(y) in totals}
    for y, sums in stock_sums.items():
        if (sums.neg < 0).any():
            raise CoefficientTableError(f"the stock raster of {y} has negative values", path=ctx.rasters[stock_key(ctx, y)].path, fix="carbon densities are >= 0 t C / ha")
    for units in unit_sets(ctx.layers, plural_of):
        areas = {y: class_areas(units, rows_fx[y], ctx.scale_bits, k) for y in years}
        # (raster t C, raster-covered ha per class) of each date, when a stock raster replaces the pools' total
        raster = {y: (units.sum_zones(s.pos)[:, :k].sum(axis=1), units.sum_zones(s.area)[:, :k]) for y, s in stock_sums.items()}
        out = {}
        out["land_use_structure"] = pd.concat([
            pd.DataFrame({"unit_id": units.ids, "name": units.names, "year": y, "area_ha": areas[y].sum(axis=1),
                          "classes_present": (areas[y] > 0).sum(axis=1), "gibbs_martin": structure.gibbs_martin(areas[y])})
            for y in years], ignore_index=True)
        matrices = {}
        for a, b in pairs:
            matrices[(a, b)], nodata_ha = unit_matrices(totals[reduction_name(a, b)], units, k, ctx.scale_bits)
            if units.level == "grid":
                result.summary[f"{a}-{b}"] = {"changed_ha": float(matrices[(a, b)].sum() - np.trace(matrices[(a, b)][0])), "no_class_ha": float(nodata_ha[0])}
        if pairs:
            out["transitions"] = pd.concat([long_table(m, units, a, b, codes, names) for (a, b), m in matrices.items()], ignore_index=True)
            out["transition_matrix"] = pd.concat([wide_table(m, units, a, b, codes, names) for (a, b), m in matrices.items()], ignore_index=True)
            out["dynamic_degree"] = pd.concat([_dynamic_degree(units, areas[a], areas[b], m, a, b, codes, names) for (a, b), m in matrices.items()], ignore_index=True)
            consecutive = [(a, b) for a, b in pairs if years.index(b) == years.index(a) + 1]
            uniform = intensity.uniform_intensity([matrices[p] for p in consecutive], years[0], years[-1])
            for kind, frames in zip(("intensity_interval", "intensity_category", "intensity_transition"),
                                    zip(*[_intensity(units, matrices[p], p, uniform, codes, names) for p in consecutive])):
                out[kind] = pd.concat(frames, ignore_index=True)
        if pools is not None:
            out["carbon_stock"] = pd.concat([_stock_frame(units, y, areas[y], pools, raster.get(y)) for y in years], ignore_index=True)
            if pairs:
                density = pools.sum(axis=1)
                total = {y: _total_stock(areas[y], pools, raster.get(y)) for y in years}
                out["sequestration"] = pd.concat([_sequestration(units, total[a], total[b], a, b, valuation) for a, b in pairs], ignore_index=True)
                out["change_carbon"] = pd.concat([_change_carbon(units, m, density, a, b, codes, names, table) for (a, b), m in matrices.items()], ignore_index=True)
        for kind, frame in out.items():
            result.tables[f"{kind}_{units.label}"] = frame
    if ctx.config.change is not None and ctx.config.change.scenarios:
        for label, frame in _scenarios(ctx, totals, pools, plural_of).items():
            result.tables[f"scenarios_{label}"] = frame
    return result


def _scenarios(ctx: RunContext, totals: dict, pools, plural_of) -> dict[str, pd.DataFrame]:
    """Per level: the base date and every scenario, with class areas, fluxes, stocks and differences."""
    from lucr.change import scenarios as sc_mod
    from lucr.errors import ConfigError
    from lucr.products.zone_class_area import reduction_name as area_name
    from lucr.zonal import flux_totals

    table, k = ctx.table, ctx.table.n_classes
    years = [lc.year for lc in ctx.dates]
    n_zones = len(ctx.layers[-1].frame) if ctx.layers else 0
    zones = UnitSet("zone", "zones", np.arange(n_zones + 1), np.arange(n_zones + 1), np.arange(n_zones + 1))
    zone_areas = {y: from_fixed_point(totals[area_name(y)][0][:, :k], ctx.scale_bits) for y in years}
    rows = []  # (scenario, year, base year, zone areas)
    for sc in ctx.config.change.scenarios:
        areas, year = None, None
        if sc.markov is not None:
            a, b = sc.markov.from_year, sc.markov.to_year
            m, _ = unit_matrices(totals[reduction_name(a, b)], zones, k, ctx.scale_bits)
            areas = sc_mod.project(zone_areas[b], sc_mod.markov_matrices(m), (sc.markov.year - b) // (b - a))
            year, base = sc.markov.year, b
        if sc.conversions:
            base = sc.base_year or (base if areas is not None else years[-1])
            start = areas if areas is not None and sc.base_year is None else zone_areas[base]
            try:
                areas = sc_mod.convert(start, sc_mod.zone_rules(sc, ctx.layers, table))
            except ValueError as exc:
                raise ConfigError(f"change.scenarios '{sc.name}': conversion shares above 100 % ({exc})", path=ctx.config.source,
                                  fix="lower the shares taken from one class of one unit to 1 or less in total") from None
            year = year if sc.base_year is None and year is not None else base
        rows.append((sc.name, year, base, areas))
    density = None if pools is None else pools.sum(axis=1)
    out = {}
    for units in unit_sets(ctx.layers, plural_of):
        frames = []
        bases = sorted({base for _, _, base, _ in rows})
        for name, year, base, areas in [("baseline", b, b, zone_areas[b]) for b in bases] + rows:
            unit_areas, base_areas = units.sum_zones(areas), units.sum_zones(zone_areas[base])
            frame = pd.DataFrame({"unit_id": units.ids, "name": units.names, "scenario": name, "year": year, "base_year": base})
            for j, code in enumerate(table.codes):
                frame[f"area_ha_class_{code}"] = unit_areas[:, j]
            source, sink = flux_totals(unit_areas, table.coefs)
            base_source, base_sink = flux_totals(base_areas, table.coefs)
            frame["source_tc"], frame["sink_tc"], frame["net_tc"] = source, sink, source + sink
            frame["d_net_tc"] = (source + sink) - (base_source + base_sink)
            if density is not None:
                frame["stock_tc"] = unit_areas @ density
                frame["d_stock_tc"] = frame["stock_tc"] - base_areas @ density
            frames.append(frame)
        out[units.label] = pd.concat(frames, ignore_index=True)
    return out


def _dynamic_degree(units, area_a, area_b, matrices, a, b, codes, names) -> pd.DataFrame:
    years = b - a
    n, k = area_a.shape
    return pd.DataFrame({
        "unit_id": np.repeat(units.ids, k), "name": np.repeat(units.names, k), "year_from": a, "year_to": b,
        "class_code": np.tile(codes, n), "class_name": np.tile(np.asarray(names, object), n),
        "area_ha_from": area_a.ravel(), "area_ha_to": area_b.ravel(), "net_change_ha": (area_b - area_a).ravel(),
        "single_dynamic_degree_pct_per_yr": structure.single_dynamic_degree(area_a, area_b, years).ravel(),
        "comprehensive_dynamic_degree_pct_per_yr": np.repeat(structure.comprehensive_dynamic_degree(matrices, years), k),
    })


def _intensity(units, m, pair, uniform, codes, names):
    a, b = pair
    d = b - a
    n, k, _ = m.shape
    s = intensity.interval_intensity(m, d)
    extent = m.sum(axis=(1, 2))
    interval = pd.DataFrame({
        "unit_id": units.ids, "name": units.names, "year_from": a, "year_to": b, "years": d, "extent_ha": extent,
        "change_ha": extent - np.trace(m, axis1=1, axis2=2), "interval_intensity_pct": s, "uniform_intensity_pct": uniform,
        "speed": np.where(s > uniform, "fast", np.where(s < uniform, "slow", "uniform")),
    })
    gain, loss = intensity.category_intensity(m, d)
    diag = np.diagonal(m, axis1=1, axis2=2)
    s_k = np.repeat(s, k)
    category = pd.DataFrame({
        "unit_id": np.repeat(units.ids, k), "name": np.repeat(units.names, k), "year_from": a, "year_to": b,
        "class_code": np.tile(codes, n), "class_name": np.tile(np.asarray(names, object), n),
        "gross_gain_ha": (m.sum(axis=1) - diag).ravel(), "gross_loss_ha": (m.sum(axis=2) - diag).ravel(),
        "gain_intensity_pct": gain.ravel(), "loss_intensity_pct": loss.ravel(), "interval_intensity_pct": s_k,
        "gain_state": _state(gain.ravel(), s_k, "active", "dormant"), "loss_state": _state(loss.ravel(), s_k, "active", "dormant"),
    })
    r, w = intensity.gain_transition_intensity(m, d)
    q, v = intensity.loss_transition_intensity(m, d)
    uu, ii, jj = np.nonzero(~np.eye(k, dtype=bool)[None].repeat(n, 0))
    codes = np.asarray(codes)
    names = np.asarray(names, object)
    gains = pd.DataFrame({
        "unit_id": units.ids[uu], "name": units.names[uu], "year_from": a, "year_to": b, "kind": "gain",
        "category": codes[jj], "category_name": names[jj], "other_class": codes[ii], "other_name": names[ii],
        "area_ha": m[uu, ii, jj], "transition_intensity_pct": r[uu, ii, jj], "uniform_intensity_pct": w[uu, jj],
    })
    losses = pd.DataFrame({
        "unit_id": units.ids[uu], "name": units.names[uu], "year_from": a, "year_to": b, "kind": "loss",
        "category": codes[ii], "category_name": names[ii], "other_class": codes[jj], "other_name": names[jj],
        "area_ha": m[uu, ii, jj], "transition_intensity_pct": q[uu, ii, jj], "uniform_intensity_pct": v[uu, ii],
    })
    transition = pd.concat([gains, losses], ignore_index=True)
    transition["state"] = _state(transition["transition_intensity_pct"].to_numpy(), transition["uniform_intensity_pct"].to_numpy(), "targeted", "avoided")
    return interval, category, transition


def _state(value, line, above: str, below: str) -> np.ndarray:
    return np.where(np.isnan(value) | np.isnan(line), "", np.where(value > line, above, np.where(value < line, below, "uniform")))


def _total_stock(areas, pools, raster) -> np.ndarray:
    """Stock (t C) per unit: pools over the class area, the stock raster's sum where it covers."""
    if raster is None:
        return stocks.stocks(areas, pools).sum(axis=1)
    raster_tc, raster_ha = raster
    return stocks.stocks(areas - raster_ha, pools).sum(axis=1) + raster_tc


def _stock_frame(units, year, areas, pools, raster) -> pd.DataFrame:
    area_ha = areas.sum(axis=1)
    pool_tc = stocks.stocks(areas if raster is None else areas - raster[1], pools)
    frame = pd.DataFrame({"unit_id": units.ids, "name": units.names, "year": year, "area_ha": area_ha})
    for j, pool in enumerate(stocks.POOLS):
        frame[f"{pool}_tc"] = pool_tc[:, j]
    if raster is not None:
        frame["stock_raster_tc"], frame["stock_raster_area_ha"] = raster[0], raster[1].sum(axis=1)
    frame["total_tc"] = _total_stock(areas, pools, raster)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["total_tc_per_ha"] = np.where(area_ha > 0, frame["total_tc"] / np.where(area_ha > 0, area_ha, 1), np.nan)
    return frame


def _sequestration(units, stock_a, stock_b, a, b, valuation) -> pd.DataFrame:
    seq = stock_b - stock_a
    frame = pd.DataFrame({
        "unit_id": units.ids, "name": units.names, "year_from": a, "year_to": b, "stock_from_tc": stock_a, "stock_to_tc": stock_b,
        "sequestration_tc": seq, "sequestration_tc_per_yr": seq / (b - a),
    })
    if valuation is not None:
        factor = stocks.valuation_factor(valuation.price_per_tc, valuation.discount_rate, valuation.rate_change, b - a)
        frame["npv"] = seq * factor
    return frame


def _change_carbon(units, m, density, a, b, codes, names, table) -> pd.DataFrame:
    carbon = stocks.change_carbon(m, density)
    u, i, j = np.nonzero((m > 0) & ~np.eye(m.shape[1], dtype=bool)[None])
    categories = np.array([c.category or c.name for c in table.classes], object)
    codes, names = np.asarray(codes), np.asarray(names, object)
    frame = pd.DataFrame({
        "unit_id": units.ids[u], "name": units.names[u], "year_from": a, "year_to": b,
        "class_from": codes[i], "class_to": codes[j], "name_from": names[i], "name_to": names[j],
        "transition_type": [f"{x} -> {y}" for x, y in zip(categories[i], categories[j])],
        "area_ha": m[u, i, j], "stock_change_tc_per_ha": density[j] - density[i], "carbon_tc": carbon[u, i, j],
    })
    frame["direction"] = np.where(frame["carbon_tc"] < 0, "loss", np.where(frame["carbon_tc"] > 0, "gain", "none"))
    frame["rank"] = frame["carbon_tc"].abs().groupby(frame["unit_id"]).rank(method="first", ascending=False).astype(int)
    return frame.sort_values(["unit_id", "rank"], ignore_index=True)

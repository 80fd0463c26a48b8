"""The statistics route inside ``lucr run``: read, account, join the units, forecast the demand.

With a land-cover run, a statistics table that gives no ecosystem sinks takes the
ecosystem fixation of each unit from its class areas of the zonal pass (land-cover year
nearest to the statistics year, said in the log) times the fixation rate of the class's
category (``carbon_oxygen`` table). Without a raster (no ``landcover``), the tables are
computed from the statistics alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from lucr.errors import ConfigError
from lucr.inventory.accounting import account, demand_increase_pct, required_standard_land_ha
from lucr.inventory.factors import load_carbon_oxygen_factors, load_inventory_factors, not_from_papers
from lucr.inventory.statistics import read_statistics

log = logging.getLogger("lucr")


@dataclass
class InventoryResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # stem -> table
    summary: dict = field(default_factory=dict)


def output_stems(cfg) -> list[str]:
    """The tables the statistics route writes (before any is computed, to stage their names)."""
    s = cfg.statistics
    stem = s.output + (f"_{_plural(cfg, s.level)}" if s.level else "")
    return [stem] + ([f"{stem}_eco_land_demand"] if s.demand is not None else [])


def _plural(cfg, level: str) -> str:
    return next(z.plural for z in cfg.zones if z.level == level)


def run_statistics(cfg, *, layers=(), zonal_by_year: dict | None = None, table=None) -> InventoryResult:
    """Account every unit-year of ``cfg.statistics``; ``zonal_by_year``: ``{year: {level: frame}}`` of the pass."""
    s = cfg.statistics
    if s.level is not None and s.level not in [z.level for z in cfg.zones]:
        raise ConfigError(f"statistics.level {s.level!r} is not a zone level of the run", path=cfg.source, fix=f"use one of: {[z.level for z in cfg.zones]}")
    factors, co = load_inventory_factors(s.factors), load_carbon_oxygen_factors(s.carbon_oxygen)
    if s.energy_factor not in factors.energy_factors:
        raise ConfigError(f"statistics.energy_factor {s.energy_factor!r} is not in table {factors.table!r}", path=cfg.source, fix=f"use one of: {', '.join(factors.energy_factors)}")
    stats = read_statistics(s.path, id_col=s.id, year_col=s.year, sheet=s.sheet, other=tuple(c for c in (s.name,) if c))
    from_areas = bool(zonal_by_year and s.level and not ({"ecosystem_fixation"} & set(stats.columns) or any(c.startswith("sink_") for c in stats.columns)))
    flagged = [f for f in not_from_papers(factors) + not_from_papers(co) if _used(f, stats, s.energy_factor, from_areas)]
    if flagged:
        log.info("statistics route: %d factor(s) used are literature defaults, not from a seed paper: %s", len(flagged), ", ".join(flagged))
    names = _names(s)
    if zonal_by_year and s.year_policy == "error":
        land_years = {y for y in zonal_by_year if y is not None}
        other = sorted({int(y) for y in stats.index.get_level_values("year")} - land_years)
        if other:
            raise ConfigError(
                f"statistics years {other} are not land-cover years of the run ({sorted(land_years)})", path=s.path,
                fix="add land cover of those years, drop them from the table, or set statistics.year_policy: nearest",
            )
    if from_areas:
        stats = stats.assign(ecosystem_fixation=_fixation_from_areas(stats, zonal_by_year, s.level, co, table))
        stats.attrs["lucr_flags"] = ("fixation_from_land_cover",)
    result, notes = account(stats, factors, co, s.energy_factor)
    if zonal_by_year and s.level and table is not None:
        result["builtup_coef_tc_per_ha"] = _builtup_coefficient(result, zonal_by_year, s.level, table)
    for note in notes:
        log.info("statistics route: %s", note)
    frame = result.reset_index()
    frame.insert(1, "name", frame["unit_id"].map(names) if names is not None else None)
    stem = output_stems(cfg)[0]
    out = InventoryResult(summary={"factors": factors.table, "carbon_oxygen": co.table, "energy_factor": s.energy_factor,
                                   "k_tc_per_tce": factors.energy_factors[s.energy_factor].value, "not_from_papers": flagged, "notes": notes})
    layer = next((lay for lay in layers if lay.level == s.level), None)
    if layer is not None:
        frame = _joined(frame, layer, s)
    out.tables[stem] = frame
    if s.demand is not None:
        out.tables[f"{stem}_eco_land_demand"] = _demand(result, s.demand, co)
    out.summary["units"], out.summary["years"] = int(frame["unit_id"].nunique()), sorted(int(y) for y in frame["year"].unique())
    return out


def _used(flag: str, stats: pd.DataFrame, energy_factor: str, from_areas: bool) -> bool:
    """Whether the factor named ``section.name`` enters this table's accounting."""
    section, _, name = flag.partition(".")
    columns = set(stats.columns)
    if section == "energy_factors":
        return name == energy_factor
    if section in ("farm_inputs", "fuels"):
        return name in columns
    if section == "crops":
        return f"yield_{name}" in columns
    if section == "cement":
        return "cement" in columns
    if section == "respiration":
        return "population" in columns
    return section == "fixation" and from_areas  # rates enter through the zonal pass's class areas


def _names(s) -> dict | None:
    if s.name is None:
        return None
    from lucr.inventory.statistics import _read_raw

    raw = _read_raw(s.path, s.sheet)
    return dict(zip(raw[s.id].astype(str).str.strip(), raw[s.name].astype(str)))


def _joined(frame: pd.DataFrame, layer, s) -> gpd.GeoDataFrame:
    """The table with the units' names and polygons; unmatched ids said both ways."""
    units = layer.frame.set_index("unit_id")
    ids = set(frame["unit_id"])
    missing_polygons = sorted(ids - set(units.index))
    no_statistics = sorted(set(units.index) - ids)
    if missing_polygons:
        log.warning("statistics: %d unit id(s) have no polygon in level '%s': %s", len(missing_polygons), s.level, ", ".join(missing_polygons[:10]))
    if no_statistics:
        log.warning("statistics: %d unit(s) of level '%s' have no statistics: %s", len(no_statistics), s.level, ", ".join(no_statistics[:10]))
    frame = frame.assign(name=frame["name"].fillna(frame["unit_id"].map(units["name"])) if "name" in frame else frame["unit_id"].map(units["name"]))
    return gpd.GeoDataFrame(frame, geometry=frame["unit_id"].map(units.geometry).to_numpy(), crs=layer.frame.crs)


def _fixation_from_areas(stats: pd.DataFrame, zonal_by_year: dict, level: str, co, table) -> pd.Series:
    """t C / yr fixed by each unit's ecological land: class areas (nearest land-cover year) x category rate."""
    years = sorted(y for y in zonal_by_year if y is not None) or [None]
    rate = {f"area_ha_class_{c.code}": co.fixation[c.category].value for c in table.classes if c.category in co.fixation}
    values = []
    for unit, year in stats.index:
        nearest = min(years, key=lambda y: abs(y - year)) if years != [None] else None
        zonal = zonal_by_year[nearest][level].set_index("unit_id")
        values.append(float(sum(zonal.at[unit, col] * r for col, r in rate.items())) if unit in zonal.index else np.nan)
    used = sorted({min(years, key=lambda y: abs(y - year)) for _, year in stats.index}) if years != [None] else []
    log.info("statistics: ecosystem fixation from the class areas of the zonal pass (land-cover year(s) %s, nearest to each statistics year)", used)
    return pd.Series(values, index=stats.index)


def _builtup_coefficient(result: pd.DataFrame, zonal_by_year: dict, level: str, table) -> pd.Series:
    """Built-up emissions over the unit's built-up area (land-cover year nearest to each statistics
    year): the per-hectare coefficient the statistics imply (issue: in place of the unverified
    default of the raster route), compared with the legend's in the log."""
    years = sorted(y for y in zonal_by_year if y is not None) or [None]
    built = [f"area_ha_class_{c.code}" for c in table.classes if c.category == "built_up"]
    values = []
    for unit, year in result.index:
        nearest = min(years, key=lambda y: abs(y - year)) if years != [None] else None
        zonal = zonal_by_year[nearest][level].set_index("unit_id")
        area = float(zonal.loc[unit, built].sum()) if unit in zonal.index and built else 0.0
        values.append(result.at[(unit, year), "builtup_emission_tc"] / area if area > 0 else np.nan)
    derived = pd.Series(values, index=result.index)
    default = next((c.coef for c in table.classes if c.category == "built_up"), None)
    if derived.notna().any() and default is not None:
        log.warning("statistics: built-up energy emissions over built-up area give %.3g-%.3g t C/ha/yr (median %.3g) against the raster route's "
                    "built-up coefficient %.3g (%s); the zonal tables keep the coefficient, inventory_allocated.tif carries the statistics' figures",
                    derived.min(), derived.max(), derived.median(), default, next(c.status for c in table.classes if c.category == "built_up"))
    return derived


def _demand(result: pd.DataFrame, demand, co) -> pd.DataFrame:
    """Per unit: release and O2 forecast for the target year (ensemble of GM(1,1), linear and growth),
    the balance coefficients they imply against today's fixation, and the increase of standard
    ecological land needed (seed 003 Table 5)."""
    import warnings

    from lucr.analysis.forecast import GreyModelWarning, forecast_panel

    rows = []
    panel_years = sorted(result.index.get_level_values("year").unique())
    last = panel_years[-1]
    horizon = demand.year - last
    forest = co.fixation["forest"].value
    fixation_now = result.xs(last, level="year")["ecosystem_fixation_tc"]
    o2_now = result.xs(last, level="year")["o2_released_t"]
    forecasts = {}
    for column in ("human_release_tc", "o2_consumed_t"):
        panel = result[column].unstack("year")
        if len(panel_years) >= 4 and horizon > 0 and panel.notna().any().any():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GreyModelWarning)
                forecasts[column] = forecast_panel(panel, horizon, methods=("ensemble",))["ensemble"].forecast.get(demand.year)
            for w in caught:
                log.warning("ecological-land demand, %s: %s", column, w.message)
        elif horizon <= 0:
            forecasts[column] = result.xs(demand.year, level="year")[column] if demand.year in panel_years else None
    for unit in fixation_now.index:
        release = forecasts.get("human_release_tc")
        o2 = forecasts.get("o2_consumed_t")
        r = float(release.get(unit, np.nan)) if release is not None else np.nan
        q = float(o2.get(unit, np.nan)) if o2 is not None else np.nan
        cbc_t = r / fixation_now[unit] if fixation_now[unit] > 0 else np.nan
        obc_t = q / o2_now[unit] if o2_now[unit] > 0 else np.nan
        rows.append({
            "unit_id": unit, "target_year": demand.year, "share": demand.share, "human_release_tc": r, "o2_consumed_t": q,
            "cbc_target": cbc_t, "obc_target": obc_t,
            "increase_carbon_pct": float(demand_increase_pct(cbc_t, demand.share)) if np.isfinite(cbc_t) else np.nan,
            "increase_oxygen_pct": float(demand_increase_pct(obc_t, demand.share)) if np.isfinite(obc_t) else np.nan,
            "required_standard_land_ha": float(required_standard_land_ha(r, forest, demand.share)) if np.isfinite(r) else np.nan,
        })
    if len(panel_years) < 4 and horizon > 0:
        log.info("ecological-land demand: not forecast (4 or more years of statistics needed, %d given)", len(panel_years))
    return pd.DataFrame(rows)

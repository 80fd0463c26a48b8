"""Statistics-based carbon accounting (seed 001) and the carbon-oxygen balance (seed 003).

Per unit and year, from :func:`lucr.inventory.statistics.read_statistics` (canonical units):

- farm-input emissions ``sum G_i * factor_i`` (seed 001 Table 1; kg C per unit -> t C);
- built-up emissions ``H * K * (GDP2 + GDP3)``, or ``energy_use * K`` (seed 001; K t C/tce);
- crop uptake ``sum Cd_i * Y_i * (1 - w_i) / H_i`` (seed 001 Table 3);
- seed 001's identity (Table 5): ``sink = crop uptake + sum of class sinks``,
  ``source = farm inputs + built-up``, ``net = source - sink`` (sinks as magnitudes);
- seed 003's balance: human release = fuels (``t x tce/t x t C/tce``) + cement + respiration
  (without any of them: seed 001's source, farm inputs + built-up energy),
  its oxygen by combustion stoichiometry; ecosystem fixation (class sinks + crop uptake, or a
  given total) and its oxygen (x 32/12); ``CBC = release / fixation``, ``OBC = O2 consumed /
  O2 released`` (> 1: the unit's ecosystems do not balance its human activity).

A component given as a total (``farm_input_emission`` ...) replaces its computation. A
component missing for a unit-year stays NaN, and so does every total that needs it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lucr.inventory.factors import CarbonOxygenFactors, InventoryFactors
from lucr.inventory.statistics import SINK_CATEGORIES

#: kg -> t
_KG = 1e-3


def _col(stats: pd.DataFrame, name: str) -> pd.Series | None:
    return stats[name] if name in stats.columns else None


def _sum_present(parts: list[pd.Series]) -> pd.Series | None:
    """Sum of the given series (NaN where any is NaN); None if there are none."""
    if not parts:
        return None
    total = parts[0].copy()
    for p in parts[1:]:
        total = total + p
    return total


def farm_input_emissions(stats: pd.DataFrame, factors: InventoryFactors) -> pd.Series | None:
    """t C / yr from the farm inputs the table gives (seed 001 Table 1)."""
    given = _col(stats, "farm_input_emission")
    parts = [stats[name] * f.factor * _KG for name, f in factors.farm_inputs.items() if name in stats.columns]
    return given if given is not None else _sum_present(parts)


def builtup_emissions(stats: pd.DataFrame, k_tc_per_tce: float) -> pd.Series | None:
    """t C / yr: ``energy_use * K``, else ``energy_intensity * (GDP2 + GDP3) * K`` (seed 001 formula 4)."""
    given = _col(stats, "builtup_emission")
    if given is not None:
        return given
    if "energy_use" in stats.columns:
        return stats["energy_use"] * k_tc_per_tce
    if {"energy_intensity", "gdp_secondary", "gdp_tertiary"} <= set(stats.columns):
        return stats["energy_intensity"] * (stats["gdp_secondary"] + stats["gdp_tertiary"]) * k_tc_per_tce
    return None


def crop_uptake(stats: pd.DataFrame, factors: InventoryFactors) -> pd.Series | None:
    """t C / yr fixed by crops: ``sum Cd * Y * (1 - moisture) / H`` (seed 001 Table 3)."""
    given = _col(stats, "crop_uptake")
    if given is not None:
        return given
    parts = []
    for crop, f in factors.crops.items():
        if f"yield_{crop}" in stats.columns:
            moisture = stats[f"moisture_{crop}"] if f"moisture_{crop}" in stats.columns else f.moisture
            parts.append(f.cd * stats[f"yield_{crop}"] * (1.0 - moisture) / f.h)
    return _sum_present(parts)


def human_release(stats: pd.DataFrame, co: CarbonOxygenFactors, k_tc_per_tce: float) -> tuple[pd.Series | None, pd.Series | None, list[str]]:
    """Carbon released (t C) and oxygen consumed (t O2) by fuels, cement and respiration (seed 003).

    Without fuels by type, ``energy_use * K`` stands in for them, its oxygen at coal's H/C
    ratio (said in the returned notes).
    """
    notes: list[str] = []
    carbon, oxygen = [], []
    fuels = [name for name in co.fuels if name in stats.columns]
    for name in fuels:
        f = co.fuels[name]
        c = stats[name] * f.tce_per_unit * f.c_per_tce
        carbon.append(c)
        oxygen.append(c * f.o2_per_c)
    if not fuels and "energy_use" in stats.columns:
        c = stats["energy_use"] * k_tc_per_tce
        carbon.append(c)
        oxygen.append(c * co.fuels["coal"].o2_per_c)
        notes.append("no fuels by type: energy_use x K stands in for them, its oxygen at coal's H/C ratio")
    if "cement" in stats.columns:
        carbon.append(stats["cement"] * co.cement.c_per_t)  # process CO2 (CaCO3 -> CaO + CO2) consumes no atmospheric O2
    if "population" in stats.columns:
        carbon.append(stats["population"] * co.respiration.c_per_person)
        oxygen.append(stats["population"] * co.respiration.o2_per_person)
    return _sum_present(carbon), _sum_present(oxygen), notes


def account(stats: pd.DataFrame, factors: InventoryFactors, co: CarbonOxygenFactors, energy_factor: str = "seed001") -> tuple[pd.DataFrame, list[str]]:
    """Every component and balance per unit-year (t C / yr, t O2 / yr), and notes on what stood in for what."""
    k = factors.energy_factors[energy_factor].value
    out = pd.DataFrame(index=stats.index)
    components = {
        "farm_input_emission_tc": farm_input_emissions(stats, factors),
        "builtup_emission_tc": builtup_emissions(stats, k),
        "crop_uptake_tc": crop_uptake(stats, factors),
    }
    for name, series in components.items():
        out[name] = np.nan if series is None else series
    sinks = [c for c in SINK_CATEGORIES if f"sink_{c}" in stats.columns]
    for c in sinks:
        out[f"sink_{c}_tc"] = stats[f"sink_{c}"]
    # seed 001 Table 5 identity (sinks as magnitudes); a component the table does not give at all
    # is left out of the sums (and said); a missing cell of one it gives keeps the sum missing
    release, o2_used, notes = human_release(stats, co, k)
    sink_parts = [s for s in [components["crop_uptake_tc"], *(stats[f"sink_{c}"] for c in sinks)] if s is not None]
    source_parts = [components[n] for n in ("farm_input_emission_tc", "builtup_emission_tc") if components[n] is not None]
    absent = [n.removesuffix("_tc") for n, s in components.items() if s is None]
    if absent and (sink_parts or source_parts):
        notes.append(f"not in the statistics, left out of sink/source: {', '.join(absent)}")
    out["sink_tc"] = _sum_present(sink_parts) if sink_parts else np.nan
    out["source_tc"] = _sum_present(source_parts) if source_parts else np.nan
    out["net_tc"] = out["source_tc"] - out["sink_tc"]
    # seed 003 carbon-oxygen balance
    fixation = _col(stats, "ecosystem_fixation")
    if fixation is None and sink_parts:
        fixation = out["sink_tc"]
    if release is None and out["source_tc"].notna().any():
        release = out["source_tc"]
        notes.append("no fuels, cement or population: the human release is seed 001's source (farm inputs + built-up energy)")
    out["human_release_tc"] = np.nan if release is None else release
    out["o2_consumed_t"] = np.nan if o2_used is None else o2_used
    out["ecosystem_fixation_tc"] = np.nan if fixation is None else fixation
    out["o2_released_t"] = out["ecosystem_fixation_tc"] * co.o2_per_c_fixed
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cbc"] = np.where(out["ecosystem_fixation_tc"] > 0, out["human_release_tc"] / out["ecosystem_fixation_tc"], np.nan)
        out["obc"] = np.where(out["o2_released_t"] > 0, out["o2_consumed_t"] / out["o2_released_t"], np.nan)
    out = out.join(intensities(stats, out, co))
    out["tier"] = tier(stats, fixation_from_areas="fixation_from_land_cover" in notes_flags(stats))
    return out, notes


def notes_flags(stats: pd.DataFrame) -> set[str]:
    """Flags the stage sets on the statistics (``attrs``), e.g. that fixation came from the land cover."""
    return set(stats.attrs.get("lucr_flags", ()))


def intensities(stats: pd.DataFrame, out: pd.DataFrame, co: CarbonOxygenFactors) -> pd.DataFrame:
    """Per unit-year: standard ecological land (forest-equivalent ha: the fixation over forest's
    rate, i.e. each class's area x its rate over forest's), and the release per GDP and per capita.

    GDP: ``gdp`` where given, else secondary + tertiary GDP (the energy accounting's base, said in
    ``gdp_basis``); 10^4 yuan, so intensities are t C per 10^4 yuan."""
    forest = co.fixation["forest"].value
    gdp = _col(stats, "gdp")
    basis = "total" if gdp is not None else None
    if gdp is None and _col(stats, "gdp_secondary") is not None and _col(stats, "gdp_tertiary") is not None:
        gdp, basis = stats["gdp_secondary"] + stats["gdp_tertiary"], "secondary + tertiary"
    population = _col(stats, "population")
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "standard_ecological_land_ha": out["ecosystem_fixation_tc"] / forest,
            "release_tc_per_10k_yuan": out["human_release_tc"] / gdp.where(gdp > 0) if gdp is not None else np.nan,
            "gdp_basis": basis,
            "release_tc_per_capita": out["human_release_tc"] / population.where(population > 0) if population is not None else np.nan,
        }, index=out.index)


def tier(stats: pd.DataFrame, fixation_from_areas: bool) -> str:
    """Where the figures of a row come from (IPCC-style tiers): raw statistics x factors, component
    totals as given, or land-cover areas x class rates (the ecosystem fixation of a raster run)."""
    given = [c for c in ("farm_input_emission", "builtup_emission", "crop_uptake") if c in stats.columns]
    source = "given totals" if given else "statistics x factors"
    sink = "land-cover areas x class rates" if fixation_from_areas else ("given totals" if any(c.startswith("sink_") or c == "ecosystem_fixation" for c in stats.columns) else "statistics x factors")
    return f"source: {source}; sink: {sink}"


def demand_increase_pct(balance_target: np.ndarray | float, share: float = 1 / 3) -> np.ndarray:
    """Increase of ecological land needed for ecosystems to fix ``share`` of the release (seed 003 Table 5), in %.

    With balance coefficient B = release / fixation at the target year, the fixation needed is
    ``share * release``, so the standard ecological land must grow by
    ``max(0, share * B - 1) * 100 %`` (0 where today's already suffices).
    """
    return np.maximum(0.0, share * np.asarray(balance_target, dtype=float) - 1.0) * 100.0


def required_standard_land_ha(release_target: np.ndarray | float, forest_fixation_tc_per_ha: float, share: float = 1 / 3) -> np.ndarray:
    """Standard (forest-equivalent) ecological land, ha, fixing ``share`` of the target-year release."""
    return share * np.asarray(release_target, dtype=float) / forest_fixation_tc_per_ha

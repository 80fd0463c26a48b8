"""Driver type of each unit's carbon risk, from its land-use transitions (seed 000's typology,
digest §7: natural background vs human-driven: agriculture, urban expansion, industry, mining).

Each off-diagonal transition of the run's first -> last interval has an *emission effect*:

- with carbon pools (``change_carbon`` table): the stock lost, ``-carbon`` (t C, a stock
  change; positive = carbon released);
- without pools: the change of the annual flux, ``area x (coef_to - coef_from)``
  (t C / yr; positive = more emission or less sink).

The effects that release carbon (> 0) are summed per driver category of the transition, and
the largest sum names the driver:

======================  ===========================================================
urban expansion         to a built-up class
industry/mining         to a built-up class whose name says industry, mining, quarry
                        or 工矿 (only where the legend distinguishes it, e.g. CAS L2 53)
agricultural            to cropland or orchard
natural background      between natural categories (forest, grassland, water,
                        unused), or no land changed in the unit
restoration             land changed, but no transition released carbon
======================  ===========================================================

``driver_transition`` names the single largest releasing transition with its effect, and
``driver_share`` the share of the unit's released carbon that its driver category carries.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

INDUSTRY = re.compile(r"industr|mining|\bmines?\b|quarr|工矿", re.IGNORECASE)
NATURAL = {"forest", "grassland", "water", "unused", None}


def driver_category(category_to: str | None, name_to: str) -> str:
    """The driver a transition into a class of ``category_to`` (named ``name_to``) stands for."""
    if category_to == "built_up":
        return "industry/mining" if INDUSTRY.search(str(name_to)) else "urban expansion"
    if category_to in ("cropland", "orchard"):
        return "agricultural"
    return "natural background"


def driver_types(transitions: pd.DataFrame, classes, units: str = "t C", change_carbon: pd.DataFrame | None = None) -> pd.DataFrame:
    """``unit_id, driver_type, driver_transition, driver_share`` of every unit with transitions.

    ``transitions``: the long transition table of a level (``unit_id, year_from, year_to,
    class_from, class_to, area_ha``; the first -> last interval is used); ``classes``: the run's
    coefficient table classes (coefficients in t C); ``change_carbon``: the level's change-carbon
    table (``carbon_tc`` or ``carbon_tco2``) when the run has pools; ``units``: the output unit.
    """
    from lucr.units import factor, renamed

    if transitions is None or not len(transitions):
        return pd.DataFrame(columns=["unit_id", "driver_type", "driver_transition", "driver_share"])
    first, last = transitions["year_from"].min(), transitions["year_to"].max()
    span = transitions[(transitions["year_from"] == first) & (transitions["year_to"] == last)]
    changed = span[span["class_from"] != span["class_to"]].copy()
    by_code = {c.code: c for c in classes}
    if change_carbon is not None and len(change_carbon):
        col = renamed("carbon_tc", units)
        cc = change_carbon[(change_carbon["year_from"] == first) & (change_carbon["year_to"] == last)]
        effect = cc.set_index(["unit_id", "class_from", "class_to"])[col]
        changed["effect"] = -changed.set_index(["unit_id", "class_from", "class_to"]).index.map(effect).to_numpy(float)
        unit_label = units
    else:
        coef = {c.code: c.coef * factor(units) for c in classes}
        changed["effect"] = changed["area_ha"].to_numpy(float) * (changed["class_to"].map(coef).to_numpy(float) - changed["class_from"].map(coef).to_numpy(float))
        unit_label = f"{units} / yr"
    changed["driver"] = [driver_category(by_code[t].category if t in by_code else None, by_code[t].name if t in by_code else "") for t in changed["class_to"]]
    rows = []
    for unit in span["unit_id"].unique():
        part = changed[changed["unit_id"] == unit]
        releasing = part[part["effect"] > 0]
        if part.empty or part["area_ha"].sum() <= 0:
            rows.append((unit, "natural background", "no land changed", np.nan))
            continue
        if releasing.empty:
            rows.append((unit, "restoration", "no transition released carbon", 0.0))
            continue
        sums = releasing.groupby("driver")["effect"].sum()
        top = releasing.loc[releasing["effect"].idxmax()]
        name_of = lambda code: by_code[code].name if code in by_code else str(code)  # noqa: E731
        rows.append((unit, sums.idxmax(), f"{name_of(top['class_from'])} -> {name_of(top['class_to'])}: {top['area_ha']:,.1f} ha, {top['effect']:,.4g} {unit_label}",
                     float(sums.max() / sums.sum())))
    return pd.DataFrame(rows, columns=["unit_id", "driver_type", "driver_transition", "driver_share"])


def change_indicators(dynamic_degree: pd.DataFrame | None, change_carbon: pd.DataFrame | None, units: str = "t C") -> pd.DataFrame:
    """``unit_id, year, dynamic_degree_pct_per_yr, change_carbon`` of the consecutive interval ending in
    each year: the comprehensive dynamic degree (% / yr) and the stock change of the changed
    transitions (output unit; < 0 lost; NaN without pools)."""
    from lucr.units import renamed

    parts = []
    if dynamic_degree is not None and len(dynamic_degree):
        d = dynamic_degree[dynamic_degree["year_from"] == dynamic_degree.groupby("year_to")["year_from"].transform("max")]  # consecutive intervals
        parts.append(d.groupby(["unit_id", "year_to"])["comprehensive_dynamic_degree_pct_per_yr"].first().rename("dynamic_degree_pct_per_yr"))
    if change_carbon is not None and len(change_carbon):
        c = change_carbon[change_carbon["year_from"] == change_carbon.groupby("year_to")["year_from"].transform("max")]
        parts.append(c.groupby(["unit_id", "year_to"])[renamed("carbon_tc", units)].sum().rename("change_carbon"))
    if not parts:
        return pd.DataFrame(columns=["unit_id", "year"])
    return pd.concat(parts, axis=1).rename_axis(["unit_id", "year"]).reset_index()

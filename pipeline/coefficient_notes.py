"""What a run says about its coefficients: the legend table written with every output set,
the log lines on values not from a seed paper, and the share of the results they carry.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lucr.coefficients import CoefficientTable
from lucr.units import factor as unit_factor
from lucr.units import renamed

log = logging.getLogger("lucr")


def legend_table(table: CoefficientTable, units: str, ranges: pd.DataFrame | None = None) -> pd.DataFrame:
    """The classes of the run's table with their coefficient (in ``units``), status and source: ``legend.*`` in every output set.
    ``ranges``: :func:`lucr.analysis.risk.coefficient_ranges` of a run with uncertainty (the range each
    coefficient is drawn from, and where that range comes from)."""
    to_units = unit_factor(units)
    frame = pd.DataFrame({
        "code": [c.code for c in table.classes], "name": [c.name for c in table.classes],
        renamed("coef_tc_per_ha", units): [c.coef * to_units for c in table.classes],
        "status": [c.status for c in table.classes], "ref": [table.references.get(c.ref, c.ref) for c in table.classes],
    })
    if ranges is not None:
        for column in ("low", "high", "sd"):
            frame[renamed(f"coef_{column}_tc_per_ha", units)] = ranges[column].to_numpy()
        frame["range_source"] = ranges["range_source"].to_numpy()
    return frame


def unverified_share(table: CoefficientTable, tables_tc: dict, threshold: float) -> dict[str, float]:
    """Shares of the source and of the sink inside the units that unverified coefficients carry; a warning above ``threshold``."""
    frame = next(iter(tables_tc.values()))  # the coarsest level holds every unit
    flux = {"source": 0.0, "sink": 0.0}
    unverified = {"source": 0.0, "sink": 0.0}
    statistics = frame["builtup_statistics_tc"].to_numpy(float) if "builtup_statistics_tc" in frame else None  # statistics.builtup
    if statistics is not None:
        flux["source"] += float(np.nansum(statistics))
    for c in table.classes:
        column = f"area_ha_class_{c.code}"
        if column not in frame or c.coef == 0:
            continue
        side = "source" if c.coef > 0 else "sink"
        area = frame[column].to_numpy(float)
        if statistics is not None and c.category == "built_up":
            area = np.where(np.isfinite(statistics), 0.0, area)  # those units' built-up flux is the statistics'
        value = float(area.sum()) * c.coef
        flux[side] += value
        if c.status == "unverified":
            unverified[side] += value
    shares = {side: (abs(unverified[side] / flux[side]) if flux[side] else 0.0) for side in flux}
    for side, share in shares.items():
        if share > threshold:
            names = sorted({c.name for c in table.classes if c.status == "unverified" and (c.coef > 0) == (side == "source")})
            log.warning(
                "%.0f %% of the %s inside the units comes from coefficients without a verified source (%s): treat the totals as indicative; "
                "give your own table, or use the statistics route (statistics:)", 100 * share, side, ", ".join(names),
            )
    return shares


def say_sources(table: CoefficientTable) -> None:
    """One line per status of the coefficients not printed in a seed paper (the numbers a user should check)."""
    meaning = {"unverified": "have no verifiable primary source", "literature_default": "are literature defaults, not from the seed papers",
               "user": "come from your table"}
    by_status: dict[str, list] = {}
    for c in table.not_from_papers():
        by_status.setdefault(c.status, []).append(f"{c.code} {c.name} {c.coef:g}")
    for status, classes in by_status.items():
        log.info(
            "%d coefficient(s) %s (status '%s' in %s): %s t C/ha/yr", len(classes), meaning.get(status, status), status,
            Path(table.path).name if table.path else table.legend, "; ".join(classes),
        )

"""Carbon mass units of the outputs: t C (the default) or t CO2.

One tonne of carbon is 44/12 t of CO2 (molar masses of CO2 and C, 44.01 / 12.011 rounded
as in IPCC 2006 Vol. 1 §1.2 and seed 001). Tables are computed in t C and expressed in the
chosen unit when they are built: every column whose name has the token ``tc``
(``net_tc``, ``net_tc_per_ha``, ``stock_change_tc_per_ha``) is multiplied by 44/12 and
renamed with ``tco2`` (``net_tco2``); ratios (``cbc``), areas and shares are unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

#: t CO2 per t C (44/12).
CO2_PER_C = 44.0 / 12.0

#: Output unit -> (column token, factor from t C).
UNITS = {"t C": ("tc", 1.0), "t CO2": ("tco2", CO2_PER_C)}

_TOKEN = re.compile(r"(?<![a-z0-9])tc(?![a-z0-9])")


def factor(units: str) -> float:
    """Multiplier from t C to ``units``."""
    return UNITS[units][1]


def is_carbon(name: str) -> bool:
    """Whether a column holds a carbon mass (its name has the token ``tc``)."""
    return bool(_TOKEN.search(name))


def renamed(name: str, units: str) -> str:
    """``net_tc`` -> ``net_tco2`` for t CO2 (unchanged for t C or columns without carbon mass)."""
    return _TOKEN.sub(UNITS[units][0], name)


def express_in(frame: pd.DataFrame, units: str) -> pd.DataFrame:
    """The frame with its carbon columns in ``units`` (renamed and scaled); the same object for t C."""
    if units == "t C":
        return frame
    f = factor(units)
    carbon = [c for c in frame.columns if isinstance(c, str) and is_carbon(c) and pd.api.types.is_numeric_dtype(frame[c])]
    out = frame.copy()
    for c in carbon:
        out[c] = frame[c] * f
    return out.rename(columns={c: renamed(c, units) for c in carbon})


def summary_in(value: Any, units: str) -> Any:
    """A run summary (nested dicts) with its carbon entries in ``units``."""
    if units == "t C":
        return value
    if isinstance(value, dict):
        return {
            (renamed(k, units) if isinstance(k, str) else k): (v * factor(units) if isinstance(k, str) and is_carbon(k) and isinstance(v, (int, float)) and not isinstance(v, bool) else summary_in(v, units))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [summary_in(v, units) for v in value]
    return value


def density_label(units: str) -> str:
    """The unit of flux density maps: ``t C / ha / yr`` or ``t CO2 / ha / yr``."""
    return f"{units} / ha / yr"

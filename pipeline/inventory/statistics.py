"""Reading a table of per-unit, per-year statistics (CSV or Excel, long or wide form).

Wide form: one row per unit and year, one column per variable with its unit in the name,
``fertiliser [10^4 t]`` or ``fertiliser (万吨)``, or in a units row right below the header
(its id cell says ``unit`` or ``单位``). Long form: columns ``<id>, <year>, variable, value,
unit``. Variables and accepted units are :data:`VARIABLES`; values are converted to the
canonical unit (the first of each list). Unknown variables or units are refused with the
nearest valid name; non-numeric cells and negative quantities are refused with their row;
a unit-year given twice is refused; an empty cell stays missing (never zero) and is
reported per column. CSVs are read as UTF-8, UTF-8 with BOM or GB18030 (detected).
"""

from __future__ import annotations

import difflib
import io
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lucr.errors import InputFileError

log = logging.getLogger("lucr")

_T = {"t": 1.0, "吨": 1.0, "kg": 1e-3, "千克": 1e-3, "10^4 t": 1e4, "万吨": 1e4}
_KG = {"kg": 1.0, "千克": 1.0, "t": 1e3, "吨": 1e3, "10^4 t": 1e7, "万吨": 1e7}
_HA = {"ha": 1.0, "公顷": 1.0, "10^3 ha": 1e3, "千公顷": 1e3, "km2": 100.0, "mu": 1 / 15, "亩": 1 / 15, "10^4 mu": 1e4 / 15, "万亩": 1e4 / 15}
_KW = {"kW": 1.0, "千瓦": 1.0, "10^4 kW": 1e4, "万千瓦": 1e4}
_YUAN = {"10^4 yuan": 1.0, "万元": 1.0, "10^8 yuan": 1e4, "亿元": 1e4, "yuan": 1e-4, "元": 1e-4}
_TCE = {"tce": 1.0, "吨标准煤": 1.0, "10^4 tce": 1e4, "万吨标准煤": 1e4}
_INTENSITY = {"tce / 10^4 yuan": 1.0, "吨标准煤/万元": 1.0}
_M3 = {"10^4 m3": 1.0, "万立方米": 1.0, "10^8 m3": 1e4, "亿立方米": 1e4, "m3": 1e-4}
_PERSONS = {"persons": 1.0, "人": 1.0, "10^4 persons": 1e4, "万人": 1e4}
_TC = {"t C": 1.0, "10^4 t C": 1e4, "万吨": 1e4, "万吨碳": 1e4}  # components as in seed 001 Table 5 (单位：万吨, of carbon)
_SHARE = {"1": 1.0, "fraction": 1.0, "%": 0.01}

CROPS = ("rice", "wheat", "maize", "soybean", "tubers", "rapeseed", "peanut", "sugarcane", "tobacco")
SINK_CATEGORIES = ("forest", "orchard", "grassland", "water", "wetland", "unused")  # the legends' categories (lucr.legend), wetland apart

#: variable -> accepted units (factor to the canonical unit, the first)
VARIABLES: dict[str, dict[str, float]] = {
    "fertiliser": _T, "sown_area": _HA, "machinery_power": _KW, "irrigated_area": _HA, "plastic_film": _KG,
    "energy_intensity": _INTENSITY, "gdp": _YUAN, "gdp_secondary": _YUAN, "gdp_tertiary": _YUAN, "energy_use": _TCE,
    "coal": _T, "gasoline": _T, "kerosene": _T, "diesel": _T, "fuel_oil": _T, "natural_gas": _M3,
    "cement": _T, "population": _PERSONS,
    **{f"yield_{c}": _T for c in CROPS}, **{f"moisture_{c}": _SHARE for c in CROPS},
    # component totals, for users (and papers) that have them instead of the raw statistics
    "farm_input_emission": _TC, "builtup_emission": _TC, "crop_uptake": _TC, "ecosystem_fixation": _TC,
    **{f"sink_{c}": _TC for c in SINK_CATEGORIES},
}
_UNIT_IN_NAME = re.compile(r"^\s*(?P<name>[^\[\(（]+?)\s*[\[\(（](?P<unit>[^\]\)）]+)[\]\)）]\s*$")


def canonical_unit(variable: str) -> str:
    return next(iter(VARIABLES[variable]))


def _read_raw(path: Path, sheet: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise InputFileError("statistics table not found", path=path, fix="check 'statistics.path' in the config")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            return pd.read_excel(path, sheet_name=sheet or 0, dtype=object, engine="openpyxl")
        except (ValueError, KeyError, OSError) as exc:
            raise InputFileError(f"cannot read the workbook ({exc})", path=path, fix="give the sheet name (statistics.sheet) or save the table as CSV") from None
    if suffix in (".csv", ".txt"):
        from lucr.text_encoding import read_text

        text, _ = read_text(path, error=InputFileError, what="statistics table")
        try:
            return pd.read_csv(io.StringIO(text), dtype=object, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputFileError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=path, fix="save it from Excel as 'CSV UTF-8 (comma delimited)'") from None
    raise InputFileError(f"unsupported table format {suffix!r}", path=path, fix="give a .csv or .xlsx table")


def _variable(name: str, path: Path) -> str:
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in VARIABLES:
        near = difflib.get_close_matches(key, list(VARIABLES), n=1)
        raise InputFileError(
            f"unknown variable {name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""), path=path,
            fix="use the variables of docs/configuration.md#statistics (e.g. fertiliser, sown_area, energy_use, coal, yield_rice, sink_forest)",
        )
    return key


def _factor(variable: str, unit: str, path: Path, where: str) -> float:
    accepted = VARIABLES[variable]
    u = " ".join(str(unit).replace("（", "(").replace("）", ")").split())
    if u not in accepted:
        near = difflib.get_close_matches(u, list(accepted), n=1)
        raise InputFileError(
            f"{where}: unit {unit!r} of {variable!r} is not one lucr knows" + (f" (did you mean {near[0]!r}?)" if near else ""), path=path,
            fix=f"use one of: {', '.join(accepted)}",
        )
    return accepted[u]


def _numbers(values: pd.Series, what: str, path: Path, rows: pd.Index) -> np.ndarray:
    text = values.astype(str).str.strip().str.replace(",", "", regex=False)
    blank = values.isna() | text.isin(["", "nan", "NaN", "-", "—"])
    number = pd.to_numeric(text.where(~blank), errors="coerce")
    bad = number.isna() & ~blank
    if bad.any():
        shown = ", ".join(f"row {r} ({values[i]!r})" for i, r in list(zip(values.index[bad], rows[bad]))[:5])
        raise InputFileError(f"{what}: cells that are not numbers: {shown}", path=path, fix="write plain numbers (no units or notes in the cells); leave unknown values empty")
    negative = number < 0
    if negative.any():
        shown = ", ".join(f"row {r} ({number[i]:g})" for i, r in list(zip(number.index[negative], rows[negative]))[:5])
        raise InputFileError(f"{what}: negative quantities: {shown}", path=path, fix="statistics and component totals are magnitudes (sinks too, as in seed 001 Table 5)")
    return number.to_numpy(float)


def read_statistics(path: str | Path, *, id_col: str = "unit_id", year_col: str = "year", sheet: str | None = None, other: tuple[str, ...] = ()) -> pd.DataFrame:
    """The table as a wide frame indexed by (unit id, year), one column per variable in its canonical unit.

    Missing cells are NaN; the columns present are the variables the table gives; ``other``
    columns (e.g. the unit name) are not variables and are left out.
    """
    path = Path(path)
    raw = _read_raw(path, sheet)
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw.drop(columns=[c for c in other if c in raw.columns])
    missing = [c for c in (id_col, year_col) if c not in raw.columns]
    if missing:
        raise InputFileError(f"column(s) {missing} not found (columns: {list(raw.columns)[:12]})", path=path, fix="set statistics.id and statistics.year to the table's id and year columns")
    rows = pd.Index(np.arange(len(raw)) + 2)  # 1-based spreadsheet rows after the header
    if {"variable", "value", "unit"} <= set(raw.columns):
        frame = _from_long(raw, id_col, year_col, path, rows)
    else:
        frame = _from_wide(raw, id_col, year_col, path, rows)
    _report_missing(frame, path)
    return frame


def _keys(raw: pd.DataFrame, id_col: str, year_col: str, path: Path, rows: pd.Index) -> tuple[pd.Series, np.ndarray]:
    ids = raw[id_col].astype(str).str.strip()
    if raw[id_col].isna().any() or (ids == "").any():
        raise InputFileError(f"rows without a unit id: {rows[raw[id_col].isna() | (ids == '')].tolist()[:10]}", path=path, fix="give every row an id")
    years = pd.to_numeric(raw[year_col], errors="coerce")
    bad = years.isna() | (years % 1 != 0)
    if bad.any():
        raise InputFileError(f"years that are not whole numbers in rows {rows[bad].tolist()[:10]}", path=path, fix="give years as integers, e.g. 2019")
    return ids, years.astype(int).to_numpy()


def _from_wide(raw: pd.DataFrame, id_col: str, year_col: str, path: Path, rows: pd.Index) -> pd.DataFrame:
    units_row = None
    if len(raw) and str(raw[id_col].iloc[0]).strip().lower() in ("unit", "units", "单位"):
        units_row, raw, rows = raw.iloc[0], raw.iloc[1:], rows[1:]
    ids, years = _keys(raw, id_col, year_col, path, rows)
    out = {}
    for col in raw.columns:
        if col in (id_col, year_col):
            continue
        m = _UNIT_IN_NAME.match(col)
        name, unit = (m["name"], m["unit"]) if m else (col, None if units_row is None else units_row[col])
        variable = _variable(name, path)
        if unit is None or (isinstance(unit, float) and np.isnan(unit)) or str(unit).strip() == "":
            raise InputFileError(f"column {col!r} gives no unit", path=path, fix=f"name it '{variable} [{canonical_unit(variable)}]', or add a units row below the header")
        if variable in out:
            raise InputFileError(f"variable {variable!r} is given by two columns", path=path, fix="keep one column per variable")
        out[variable] = _numbers(raw[col], f"column {col!r}", path, rows) * _factor(variable, unit, path, f"column {col!r}")
    frame = pd.DataFrame(out, index=pd.MultiIndex.from_arrays([ids.to_numpy(), years], names=["unit_id", "year"]))
    dup = frame.index[frame.index.duplicated()].unique().tolist()
    if dup:
        raise InputFileError(f"unit-years given twice: {dup[:10]}", path=path, fix="keep one row per unit and year")
    return frame.sort_index()


def _from_long(raw: pd.DataFrame, id_col: str, year_col: str, path: Path, rows: pd.Index) -> pd.DataFrame:
    ids, years = _keys(raw, id_col, year_col, path, rows)
    variables = [_variable(v, path) for v in raw["variable"]]
    values = _numbers(raw["value"], "column 'value'", path, rows)
    factors = np.array([_factor(v, u, path, f"row {r}") for v, u, r in zip(variables, raw["unit"], rows)])
    long = pd.DataFrame({"unit_id": ids.to_numpy(), "year": years, "variable": variables, "value": values * factors, "unit": raw["unit"].astype(str).to_numpy()})
    mixed = long.groupby("variable")["unit"].nunique()
    for variable in mixed[mixed > 1].index:
        log.warning("%s: %s is given in %d units (%s); each row converted to %s", path.name, variable, mixed[variable],
                    ", ".join(sorted(long.loc[long["variable"] == variable, "unit"].unique())), canonical_unit(variable))
    dup = long.duplicated(["unit_id", "year", "variable"], keep=False)
    if dup.any():
        first = long[dup].iloc[0]
        raise InputFileError(f"{first['variable']} of unit {first['unit_id']} in {first['year']} is given {int(dup.sum())} times (rows {rows[dup].tolist()[:6]})", path=path, fix="keep one row per unit, year and variable")
    frame = long.pivot(index=["unit_id", "year"], columns="variable", values="value")
    frame.columns.name = None
    return frame.sort_index()


def _report_missing(frame: pd.DataFrame, path: Path) -> None:
    gaps = {c: int(frame[c].isna().sum()) for c in frame.columns if frame[c].isna().any()}
    if gaps:
        log.warning("%s: missing values (left missing, never taken as zero; the totals that need them are missing too): %s",
                    path.name, ", ".join(f"{c} {n} unit-year(s)" for c, n in gaps.items()))

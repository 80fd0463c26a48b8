"""Carbon stocks, sequestration, its value, and the carbon of each land-use transition (methods.md §4).

Four pools per class (``c_above, c_below, c_soil, c_dead``, t C / ha), as InVEST's carbon
model takes them: a unit's stock at a date is ``sum_class area_ha * (sum of pools)`` (t C),
exactly the cross-tab of the single pass times the pool table; sequestration between
two dates is the stock difference, and its annual rate that over the years between them.

Valuation follows InVEST's carbon model (natcap.invest.carbon): the sequestration is
spread evenly over the ``T = t2 - t1`` years and each year's share is discounted,
``NPV = price * seq / T * sum_{t=0}^{T-1} 1 / ((1 + r/100)^t (1 + c/100)^t)`` with ``r`` the
market discount rate and ``c`` the annual rate of change of the price (both %).

Change carbon of a transition i -> j in a unit: ``area_ij * (stock_j - stock_i)`` (t C;
negative: carbon lost to the atmosphere).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from lucr.errors import CoefficientTableError
from lucr.parameters import KINDS, ParameterRow, ParameterTable, load_parameters
from lucr.text_encoding import read_text

POOLS = KINDS["pools"].columns  # c_above, c_below, c_soil, c_dead


def read_pools(path: str | Path) -> ParameterTable:
    """A pool table: InVEST's biophysical CSV (``lucode`` and the four ``c_*`` columns, names
    matched case-insensitively as InVEST does; other columns ignored) or a lucr ``pools`` YAML.
    """
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml") or not path.suffix:
        table = load_parameters(path)
        if table.kind != "pools":
            raise CoefficientTableError(f"'{table.id}' is a {table.kind} table, not a pools table", path=path, fix="give a table of kind: pools")
        _check_non_negative(table, path)
        return table
    if not path.is_file():
        raise CoefficientTableError("carbon pool table not found", path=path, fix="check 'change.pools' in the config")
    text, _ = read_text(path, error=CoefficientTableError, what="carbon pool table")
    reader = csv.DictReader(io.StringIO("\n".join(text.splitlines())))  # \r, \r\n or \n line ends
    try:
        header = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
        records = list(reader)
    except csv.Error as exc:
        raise CoefficientTableError(f"not a readable CSV ({exc})", path=path, fix="save the pool table from Excel as 'CSV UTF-8 (comma delimited)'") from None
    missing = [c for c in ("lucode", *POOLS) if c not in header]
    if missing:
        raise CoefficientTableError(
            f"column(s) {missing} missing (found {list(reader.fieldnames or [])})", path=path,
            fix="use InVEST's biophysical table columns: lucode, c_above, c_below, c_soil, c_dead (t C / ha)",
        )
    rows, seen = [], {}
    for i, rec in enumerate(records, start=2):
        raw = {k: (rec.get(header[k]) or "").strip() for k in ("lucode", *POOLS)}
        if not any(raw.values()):
            continue
        values = {}
        for key, value in raw.items():
            try:
                number = float(value)
            except ValueError:
                raise CoefficientTableError(f"line {i}: {key} {value!r} is not a number", path=path, fix="write plain numbers (t C / ha)") from None
            if not math.isfinite(number):
                raise CoefficientTableError(f"line {i}: {key} is not finite", path=path, fix="write finite numbers")
            values[key] = number
        code = values.pop("lucode")
        if code != int(code):
            raise CoefficientTableError(f"line {i}: lucode {raw['lucode']!r} is not an integer", path=path, fix="lucode is the land-cover code")
        if int(code) in seen:
            raise CoefficientTableError(f"duplicate lucode {int(code)} (lines {seen[int(code)]} and {i})", path=path, fix="keep one row per lucode")
        seen[int(code)] = i
        name = (rec.get(header.get("lulc_name", ""), "") or rec.get(header.get("lulc_desc", ""), "") or "").strip() if ("lulc_name" in header or "lulc_desc" in header) else ""
        rows.append(ParameterRow(int(code), values, name, "", "user", ""))
    if not rows:
        raise CoefficientTableError("the pool table has no rows", path=path, fix="add one row per land-cover code")
    table = ParameterTable(path.stem, "pools", "code", tuple(rows), path=str(path))
    _check_non_negative(table, path)
    return table


def _check_non_negative(table: ParameterTable, path) -> None:
    bad = [f"{r.key}: {c} = {v:g}" for r in table.rows for c, v in r.values.items() if v < 0]
    if bad:
        raise CoefficientTableError(f"negative carbon pools ({'; '.join(bad[:5])})", path=path, fix="carbon stock densities are >= 0 t C / ha")


def pools_per_class(table: ParameterTable, classes, present: np.ndarray | None = None) -> np.ndarray:
    """``(K, 4)`` pool densities (t C / ha) of ``classes`` (with ``code``, ``name``, ``category``).

    A class present in the raster (``present[k]``) without a row is an error naming it; a
    class absent from every date gets zeros (it holds no area). Without ``present`` (before
    the pass), classes without a row get NaN.
    """
    rows = [table.row_for(c) for c in classes]
    fill = np.nan if present is None else 0.0
    present = np.zeros(len(rows), bool) if present is None else present
    missing = [f"{c.code} ({c.name})" for c, r, p in zip(classes, rows, present) if r is None and p]
    if missing:
        raise CoefficientTableError(
            f"no carbon pools for class(es) {', '.join(missing)}, present in the land cover", path=table.path,
            fix=f"add a row per {'lucode' if table.key == 'code' else 'category'} for these classes",
        )
    return np.array([[r.values[p] for p in POOLS] if r is not None else [fill] * 4 for r in rows], np.float64)


def stocks(area_ha: np.ndarray, pools: np.ndarray) -> np.ndarray:
    """``(n, 4)`` stock per pool (t C) of units with ``area_ha`` (n, K) under ``pools`` (K, 4)."""
    return area_ha @ pools


def valuation_factor(price_per_tc: float, discount_rate_pct: float, rate_change_pct: float, years: int) -> float:
    """Value (currency) of one t C sequestered evenly over ``years`` years (InVEST's carbon valuation).

    Examples
    --------
    >>> valuation_factor(10.0, 0.0, 0.0, 5)  # no discounting: the price
    10.0
    >>> round(valuation_factor(10.0, 10.0, 0.0, 2), 6)  # 5 now + 5 / 1.1 a year later
    9.545455
    """
    if years <= 0:
        raise ValueError("valuation needs a later second date")
    t = np.arange(years, dtype=np.float64)
    discount = ((1.0 + discount_rate_pct / 100.0) ** t) * ((1.0 + rate_change_pct / 100.0) ** t)
    return float(price_per_tc / years * (1.0 / discount).sum())


def change_carbon(matrices: np.ndarray, total_density: np.ndarray) -> np.ndarray:
    """``(n, K, K)`` carbon (t C) of each transition: ``area_ij * (stock_j - stock_i)`` per hectare."""
    return matrices * (total_density[None, :] - total_density[:, None])[None, :, :]

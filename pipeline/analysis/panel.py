"""Per-unit time series: long tables (one row per unit-year) -> unit x year panels.

The analysis stages (:mod:`lucr.analysis.forecast`, :mod:`lucr.analysis.grey_relational`,
:mod:`lucr.analysis.autocorrelation`, :mod:`lucr.analysis.gravity`) take *panels*:
a DataFrame indexed by unit id with one column per year, no gaps. This module reads a
user's table (CSV, Parquet, GeoPackage, GeoParquet), checks its ids and years, and
applies the missing-year policy: ``interpolate`` (linear in the year, interior gaps
only; a unit missing its first or last year is dropped) or ``drop`` (any gap drops
the unit). Every drop and fill is reported, never silent.
"""

from __future__ import annotations

import difflib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from lucr.errors import AnalysisError, InputFileError

log = logging.getLogger("lucr")
MissingPolicy = Literal["interpolate", "drop"]
#: Stand-in year of an undated single-year table (a run without ``landcover.year``).
UNDATED = 0


@dataclass
class PanelReport:
    """What the missing-year policy did to one variable's panel."""

    variable: str
    policy: str
    dropped: dict = field(default_factory=dict)       # unit id -> reason
    interpolated: dict = field(default_factory=dict)  # unit id -> years filled

    def log(self) -> None:
        if self.dropped:
            reasons: dict[str, list] = {}
            for unit, reason in self.dropped.items():
                reasons.setdefault(reason, []).append(unit)
            said = "; ".join(f"{reason}: {id_listing(units, limit=8)}" for reason, units in reasons.items())
            why = " (the CBC is undefined without sink land)" if self.variable in ("cbc", "cbc_landcover") else ""
            log.warning("%s: %d unit(s) left out of its analysis%s (missing_years: %s); %s", self.variable, len(self.dropped), why, self.policy, said)
        if self.interpolated:
            log.warning("%s: missing years interpolated for %d unit(s): %s", self.variable, len(self.interpolated), id_listing(self.interpolated))

    def as_dict(self) -> dict:
        return {
            "variable": self.variable, "missing_years": self.policy,
            "dropped": {str(k): v for k, v in self.dropped.items()},
            "interpolated": {str(k): v for k, v in self.interpolated.items()},
        }


def id_listing(items, limit: int = 12) -> str:
    """``a, b, c and 9 more`` for messages; a dict shows its values too: ``a (reason)``."""
    keys = list(items)
    shown = ", ".join(f"{k} ({items[k]})" if isinstance(items, dict) else str(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_unit_table(path: str | Path, layer: str | None = None) -> pd.DataFrame:
    """Read a per-unit table: ``.csv``, ``.parquet`` (GeoParquet too) or a vector file (``.gpkg``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError("table not found", path=path, fix="give the path of a CSV, Parquet or GeoPackage table with one row per unit (and year)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            from lucr.text_encoding import read_text

            return pd.read_csv(io.StringIO(read_text(path, error=InputFileError)[0]))
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        import pyogrio

        from lucr.io import data_layer

        return pyogrio.read_dataframe(path, layer=data_layer(path, layer, fix="give the layer: --layer NAME"), read_geometry=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the table ({str(exc).splitlines()[0]})", path=path, fix="save it as CSV (UTF-8), Parquet or GeoPackage") from None
    except Exception as exc:  # pyogrio/pyarrow raise their own error types
        raise InputFileError(f"cannot read the table ({type(exc).__name__}: {str(exc).splitlines()[0]})", path=path, fix="save it as CSV (UTF-8), Parquet or GeoPackage") from None


def require_columns(frame: pd.DataFrame, columns: list[str], *, what: str, source: str | Path | None = None, numeric: bool = False) -> None:
    """Raise naming each missing (or, with ``numeric``, non-numeric) column and the nearest existing one."""
    problems = []
    for col in columns:
        if col not in frame.columns:
            near = difflib.get_close_matches(col, [str(c) for c in frame.columns], n=1)
            problems.append(f"'{col}' is not a column" + (f" (did you mean '{near[0]}'?)" if near else ""))
        elif numeric and not pd.api.types.is_numeric_dtype(frame[col]):
            problems.append(f"'{col}' is not numeric ({frame[col].dtype})")
    if problems:
        listed = [str(c) for c in frame.columns if not numeric or pd.api.types.is_numeric_dtype(frame[c])]
        shown = ", ".join(listed[:40]) + (" ..." if len(listed) > 40 else "")
        error = AnalysisError if source is None else InputFileError  # a file's header vs an in-memory table
        raise error(f"{what}: " + "; ".join(problems), path=source, fix=f"name existing columns (case-sensitive); the {'numeric ' if numeric else ''}columns are: {shown}")


def check_unique(frame: pd.DataFrame, id_col: str, year_col: str | None, source: str | Path | None = None) -> None:
    """Each unit (and year) must appear once."""
    keys = [id_col] + ([year_col] if year_col else [])
    dup = frame[frame.duplicated(keys, keep=False)]
    if len(dup):
        shown = ", ".join(str(tuple(r)) if len(keys) > 1 else str(r[0]) for r in dup[keys].drop_duplicates().head(10).itertuples(index=False))
        raise InputFileError(
            f"{len(dup)} rows repeat a {' and '.join(keys)}: {shown}", path=source,
            fix="keep one row per unit" + (" and year (aggregate duplicates first)" if year_col else " (or, for one row per unit and year, name the year column: --year)"),
        )


def to_panel(frame: pd.DataFrame, id_col: str, year_col: str | None, variable: str, *, years: list[int] | None = None, missing: MissingPolicy = "interpolate") -> tuple[pd.DataFrame, PanelReport]:
    """One variable as a unit x year panel with the missing-year policy applied.

    Parameters
    ----------
    frame : long table, one row per unit-year (unit ids unique per year)
    id_col, year_col : unit id and year columns (``year_col=None``: a single undated period)
    variable : the numeric column to pivot
    years : restrict to these years (default: every year in the table)
    missing : ``interpolate`` linearly in the year between a unit's known years (interior
        gaps only; a unit without its first or last year is dropped), or ``drop`` units
        with any missing year. NaN values count as missing.

    Returns the panel (index unit ids, int year columns ascending) and what was done.
    """
    require_columns(frame, [variable], what="analysis variable", numeric=True)
    long = frame.assign(**{"__year": UNDATED if year_col is None else frame[year_col]})
    if years is not None:
        long = long[long["__year"].isin(years)]
        absent = sorted(set(years) - set(long["__year"]))
        if absent:
            raise AnalysisError(f"years {absent} are not in the table (it has {sorted(set(frame[year_col]))})" if year_col else "the table has no year column", fix="list years present in the table under analysis.years")
    panel = long.pivot(index=id_col, columns="__year", values=variable).sort_index(axis=1)
    panel.columns = panel.columns.astype(int)
    panel.columns.name = None
    panel.index.name = "unit_id"
    report = PanelReport(variable=variable, policy=missing)
    gaps = panel.isna()
    if not gaps.to_numpy().any():
        return panel.astype(float), report
    year_arr = panel.columns.to_numpy()
    fillable = gaps.any(axis=1) & ~gaps.iloc[:, 0] & ~gaps.iloc[:, -1] if missing == "interpolate" else pd.Series(False, index=panel.index)
    for unit in panel.index[gaps.any(axis=1) & ~fillable]:
        report.dropped[unit] = "no value in " + ", ".join(str(y) for y in year_arr[gaps.loc[unit].to_numpy()])
    if fillable.any():
        rows = panel[fillable]
        filled = rows.T.interpolate(method="index").T  # linear in the year value, interior gaps
        for unit in rows.index:
            report.interpolated[unit] = [int(y) for y in year_arr[gaps.loc[unit].to_numpy()]]
        panel.loc[fillable] = filled
    panel = panel[~gaps.any(axis=1) | fillable]
    report.log()
    return panel.astype(float), report


def normalise_ids(table_ids: pd.Index, polygon_ids: pd.Series) -> tuple[pd.Index, pd.Series]:
    """Compare ids as integers when both sides are numeric, else as text (``'110000'`` == ``110000``)."""
    if pd.api.types.is_numeric_dtype(table_ids) and pd.api.types.is_numeric_dtype(polygon_ids):
        return table_ids, polygon_ids
    return table_ids.astype(str), polygon_ids.astype(str)


def match_ids(table_ids, polygon_ids, *, table: str | Path | None, polygons: str | Path | None) -> None:
    """Every table unit must have a polygon; polygons without rows are reported and left out."""
    table_set, polygon_set = set(table_ids), set(polygon_ids)
    unplaced = sorted(table_set - polygon_set, key=str)
    if unplaced:
        raise AnalysisError(
            f"{len(unplaced)} unit id(s) of the table {table or ''} have no polygon in {polygons or 'the polygons'}: {id_listing(unplaced)}"
            f" (polygon ids look like: {', '.join(str(i) for i in list(polygon_ids)[:5])})",
            fix="give the id column that the polygons and the table share (--polygons-id / --id), or remove those rows",
        )
    spare = sorted(polygon_set - table_set, key=str)
    if spare:
        log.warning("%d polygon(s) have no row in the table and are left out of the spatial analysis: %s", len(spare), id_listing(spare))


def equally_spaced(years) -> bool:
    """True when the years step evenly (as GM(1,1) and the growth rate assume)."""
    steps = np.diff(np.asarray(years))
    return len(steps) == 0 or bool(np.all(steps == steps[0]) and steps[0] > 0)

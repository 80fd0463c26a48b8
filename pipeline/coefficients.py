"""The flux coefficients of a run: a legend resolved against a ``flux`` parameter table.

``load_table(legend)`` takes a built-in legend (``configs/legends/``) and its default flux
table (``configs/parameters/flux_seed001.yaml``, keyed by category: seed 001 Table 2 and
flagged defaults); ``load_table(legend, path)`` resolves a user table against a legend;
``load_table(path=...)`` reads a user table that names its own classes: a CSV with the
header ``code,name,coef,ref,status`` and optional ``# unit: ...`` / ``# nodata: ...``
lines, or a code-keyed parameter YAML. The result, :class:`CoefficientTable`, is the
per-class view (t C / ha / yr, sources positive) that the kernels, tables and summaries
use; every value keeps its source and status, and values not printed in a seed paper are
reported in the run log (methods.md: "never silently invented").
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lucr.errors import CoefficientTableError
from lucr.legend import ClassColumns, Legend, LegendClass, builtin_legend_files, load_legend, read_yaml_file
from lucr.text_encoding import read_text
from lucr.yaml_strict import load_yaml
from lucr.parameters import KINDS, PARAMETER_DIR, STATUSES, ParameterFile, ParameterRow, ParameterTable, build_table, builtin_parameter_files, load_parameters, spreads

__all__ = ["STATUSES", "TABLE_DIR", "UNITS", "ClassCoefficient", "CoefficientTable", "builtin_legends", "load_table"]

#: Where the example user table and the built-in parameter tables live.
TABLE_DIR = PARAMETER_DIR
#: Accepted units of flux tables and their factor to t C / ha / yr (12/44 t C per t CO2).
UNITS = KINDS["flux"].units


@dataclass(frozen=True)
class ClassCoefficient:
    code: int
    name: str
    coef: float  # t C / ha / yr, sources positive
    ref: str = ""
    status: str = "user"
    note: str = ""
    category: str | None = None
    spread: tuple[str, float, float] | None = None  # ("range", low, high) or ("sd", sd, sd), t C / ha / yr, from the table
    range_ref: str = ""


@dataclass(frozen=True)
class CoefficientTable:
    """A legend's classes with their flux coefficients (t C / ha / yr, sources positive)."""

    legend: str
    classes: tuple[ClassCoefficient, ...]
    nodata: tuple[int, ...] = ()
    title: str = ""
    references: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    @property
    def codes(self) -> np.ndarray:
        return np.array([c.code for c in self.classes], dtype=np.int64)

    @property
    def coefs(self) -> np.ndarray:
        return np.array([c.coef for c in self.classes], dtype=np.float64)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def digest(self) -> str:
        """SHA-256 of the classes' codes, coefficients and provenance (not of the file's formatting)."""
        from lucr.provenance import table_digest

        return table_digest([(c.code, c.coef, c.status, c.ref) for c in self.classes])

    def not_from_papers(self) -> list[ClassCoefficient]:
        """Classes whose value is not printed in a seed paper (to report in the run log)."""
        return [c for c in self.classes if c.status != "paper"]

    def columns(self, dtype: np.dtype, extra_nodata: tuple[int | None, ...] = ()) -> ClassColumns:
        """Cross-tab column layout of these classes for rasters of integer ``dtype``."""
        return ClassColumns.build(self.codes, (*self.nodata, *extra_nodata), dtype)

    def dense_luts(self, dtype: np.dtype, extra_nodata: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, int]:
        """``(class_of_code, coef_lut, code_offset)`` over the whole range of ``dtype``.

        ``class_of_code[code - offset]`` is 0..K-1 for the classes, K for unknown codes and
        K+1 for nodata; ``coef_lut`` holds the coefficient (float32) or NaN.
        """
        cols = self.columns(dtype, extra_nodata)
        return cols.class_of_code, cols.lut(self.coefs), cols.offset


def resolve(legend: Legend, flux: ParameterTable) -> CoefficientTable:
    """The per-class flux view of ``legend`` under the ``flux`` table (by code or category)."""
    if flux.kind != "flux":
        raise CoefficientTableError(f"'{flux.id}' is a {flux.kind} table, not a flux table", path=flux.path, fix="give a table of kind: flux")
    rows = flux.resolve(legend)
    classes = tuple(
        ClassCoefficient(c.code, c.name, r.values["coef"], r.ref, r.status, c.note or r.note, c.category, r.spread.get("coef"), r.range_ref)
        for c, r in zip(legend.classes, rows)
    )
    return CoefficientTable(legend.id, classes, legend.nodata, legend.title, {**legend.references, **flux.references}, flux.path or legend.path)


def builtin_legends() -> dict[str, Path]:
    """Built-in legends by id (each resolves against its default flux table)."""
    return builtin_legend_files()


def _legend_of(table: ParameterTable, nodata, title: str) -> Legend:
    """The legend a code-keyed user table defines through its rows' codes and names."""
    classes = tuple(LegendClass(int(r.key), r.name or str(r.key)) for r in table.rows)
    return Legend(table.id, classes, tuple(nodata), title, path=table.path)


def _nodata_codes(values, path) -> tuple[int, ...]:
    listed = values if isinstance(values, (list, tuple)) else [values] if values is not None else []
    return tuple(_code(v, path, "nodata") for v in listed)


def _number(value, what: str, path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CoefficientTableError(f"{what} is not a number: {value!r}", path=path, fix="write a plain number") from None
    if not math.isfinite(number):
        raise CoefficientTableError(f"{what} is not finite: {value!r}", path=path, fix="write a finite number")
    return number


def _code(value, path, row: str) -> int:
    number = _number(value, f"class code {value!r} ({row})", path)
    if number != int(number):
        raise CoefficientTableError(f"class code {value!r} ({row}) is not an integer", path=path, fix="class codes are the integer values of the land-cover raster")
    return int(number)


def _code_table(records: list[dict], *, table_id: str, unit: str | None, references: dict, path: str) -> ParameterTable:
    """A code-keyed flux table from user records (CSV rows, or the ``classes`` of a lucr 0.1 YAML)."""
    unit = unit or KINDS["flux"].unit
    if not isinstance(unit, str) or unit not in UNITS:
        raise CoefficientTableError(f"unknown unit {unit!r}", path=path, fix=f"use one of: {', '.join(UNITS)}")
    if not records:
        raise CoefficientTableError("the table has no classes", path=path, fix="add one row per land-cover class")
    rows, seen = [], {}
    for i, rec in enumerate(records, start=1):
        where = f"row {i}"
        if not isinstance(rec, dict) or "code" not in rec or "coef" not in rec:
            raise CoefficientTableError(f"{where} lacks 'code' or 'coef'", path=path, fix="every class needs a code and a coef")
        code = _code(rec["code"], path, where)
        if code in seen:
            raise CoefficientTableError(f"duplicate class code {code} (rows {seen[code]} and {i})", path=path, fix="keep one row per class code")
        seen[code] = i
        coef = _number(rec["coef"], f"coef of class {code}", path) * UNITS[unit]
        status = str(rec.get("status") or "user").strip()
        if status not in STATUSES:
            raise CoefficientTableError(f"class {code}: status {status!r} is not one of {STATUSES}", path=path, fix="mark the value's provenance")
        ref = str(rec.get("ref") or "").strip()
        if references and ref and ref not in references and status != "user":
            raise CoefficientTableError(f"class {code} cites ref {ref!r}, which is not in 'references'", path=path, fix="add the reference or correct the id")
        bounds = {f"coef_{end}": _number(rec[f"coef_{end}"], f"coef_{end} of class {code}", path) for end in ("low", "high", "sd") if rec.get(f"coef_{end}") is not None and str(rec[f"coef_{end}"]).strip()}
        spread = spreads({"coef": coef / UNITS[unit]}, bounds, UNITS[unit], path, f"class {code}")
        range_ref = str(rec.get("range_ref") or "").strip()
        rows.append(ParameterRow(code, {"coef": coef}, str(rec.get("name") or code), ref, status, str(rec.get("note") or ""), spread, range_ref))
    return ParameterTable(table_id, "flux", "code", tuple(rows), references=references, path=path)


def _read_csv(path: Path) -> tuple[ParameterTable, dict]:
    text, _ = read_text(path, error=CoefficientTableError, what="coefficient table")
    meta, body = {}, []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            key, _, value = line.lstrip("# ").partition(":")
            meta[key.strip().lower()] = value.strip()
        elif line.strip():
            body.append(line)
    if body and "\t" in body[0] and "," not in body[0]:
        raise CoefficientTableError(
            "the table is tab-separated, lucr reads comma-separated CSV", path=path,
            fix="save it from Excel as 'CSV UTF-8 (comma delimited)' (not 'Text (Tab delimited)')",
        )
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    if reader.fieldnames is None or not {"code", "coef"} <= {f.strip() for f in reader.fieldnames}:
        raise CoefficientTableError(
            f"CSV header must include 'code' and 'coef' (found {reader.fieldnames})", path=path,
            fix="use the header code,name,coef,ref,status (see configs/parameters/README.md)",
        )
    records = []
    for i, row in enumerate(reader, start=1):
        if None in row:  # csv puts cells beyond the header under the key None
            raise CoefficientTableError(
                f"row {i} has {len(reader.fieldnames) + len(row[None])} cells, the header {len(reader.fieldnames)}", path=path,
                fix="quote names holding a comma (\"a, b\"), or remove the extra cells",
            )
        records.append({k.strip(): (v or "").strip() for k, v in row.items()})
    table = _code_table(records, table_id=meta.get("legend", path.stem), unit=meta.get("unit"), references={}, path=str(path))
    return table, {"nodata": meta.get("nodata", "").replace(",", " ").split(), "title": meta.get("title", "")}


def _read_user_yaml(path: Path) -> tuple[ParameterTable, dict]:
    """A parameter-table YAML (``table:``), or a legend-with-coefficients YAML (``classes:``, lucr 0.1)."""
    doc = load_yaml(path, error=CoefficientTableError, fix="check the file's syntax")
    if isinstance(doc, dict) and isinstance(doc.get("classes"), list) and "table" not in doc:
        if not isinstance(doc.get("references") or {}, dict):
            raise CoefficientTableError("'references' must map reference ids to citations", path=path, fix="write 'references: {id: {citation: ...}}'")
        refs = {k: (v.get("citation", "") if isinstance(v, dict) else str(v)) for k, v in (doc.get("references") or {}).items()}
        table = _code_table(doc["classes"], table_id=str(doc.get("legend", path.stem)), unit=doc.get("unit"), references=refs, path=str(path))
        return table, {"nodata": doc.get("nodata"), "title": str(doc.get("title", ""))}
    table = build_table(read_yaml_file(path, ParameterFile), str(path))
    return table, {"nodata": None, "title": table.title}


def load_table(legend: str | Path | None = None, path: str | Path | None = None) -> CoefficientTable:
    """The flux coefficients of a legend (built-in id or legend file) and/or a user table (CSV or YAML).

    - ``load_table("igbp")``: the built-in legend under its default flux table;
    - ``load_table(path=...)``: a user table naming its classes by code (legend from its rows);
    - ``load_table("igbp", path=...)``: a user table (by code or by category) applied to a legend.
    """
    if path is None:
        if legend is None:
            raise CoefficientTableError("no legend and no coefficient table given", fix="set 'legend' (see `lucr legends`) or 'coefficients' in the config")
        if not Path(str(legend)).suffix and str(legend) not in builtin_legend_files():
            raise CoefficientTableError(f"no built-in coefficient table for legend {str(legend)!r}", fix=f"use one of: {', '.join(builtin_legend_files())}, or give 'coefficients: <file>'")
        lg = load_legend(legend)
        if "flux" not in lg.parameters:
            raise CoefficientTableError(f"legend '{lg.id}' names no default flux table", path=lg.path, fix="add 'parameters: {flux: <table id>}' or give 'coefficients' in the config")
        return resolve(lg, load_parameters(lg.parameters["flux"]))
    path = Path(path)
    if not path.suffix and path.name in builtin_parameter_files():
        flux = load_parameters(path.name)
        extra = {"nodata": None, "title": flux.title}
    else:
        if not path.is_file():
            problem = "is a folder, not a coefficient table" if path.is_dir() else "coefficient table not found"
            raise CoefficientTableError(problem, path=path, fix="check the 'coefficients' path in the config")
        flux, extra = _read_user_yaml(path) if path.suffix.lower() in (".yaml", ".yml") else _read_csv(path)
    if legend is not None:
        lg = load_legend(legend)
        listed = _nodata_codes(extra["nodata"], str(path))
        if listed and set(listed) != set(lg.nodata):
            raise CoefficientTableError(
                f"the table's nodata codes {sorted(listed)} differ from those of legend '{lg.id}' {sorted(lg.nodata)}", path=path,
                fix="drop the '# nodata:' line (the legend says what no data is), or give the table without 'legend'",
            )
        return resolve(lg, flux)
    if flux.key != "code":
        raise CoefficientTableError(f"table '{flux.id}' is keyed by category and needs a legend", path=path, fix="set 'legend' in the config to the legend of the raster")
    nodata = _nodata_codes(extra["nodata"], str(path))
    clash = sorted(set(nodata) & {r.key for r in flux.rows})
    if clash:
        raise CoefficientTableError(f"codes {clash} are both classes and nodata", path=path, fix="remove them from one of the two")
    return resolve(_legend_of(flux, nodata, extra["title"]), flux)

"""Coefficient tables: land-cover class -> carbon flux density (t C / ha / yr).

Built-in tables live in ``configs/coefficients/<legend>.yaml`` (schema in that folder's
README); users may give their own YAML of the same schema or a CSV with the header
``code,name,coef,ref,status`` and optional ``# unit: ...`` / ``# nodata: ...`` comment
lines. Every value carries its source; values not printed in a seed paper are
reported in the run log (methods.md: "never silently invented").
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from lucr.errors import CoefficientTableError

from lucr.configs import CONFIG_DIR

TABLE_DIR = CONFIG_DIR / "coefficients"
STATUSES = ("paper", "literature_default", "unverified", "user")
#: Accepted units, and the factor that converts them to t C / ha / yr (44/12 t CO2 per t C).
UNITS = {"t C / ha / yr": 1.0, "t CO2 / ha / yr": 12.0 / 44.0}


@dataclass(frozen=True)
class ClassCoefficient:
    code: int
    name: str
    coef: float  # t C / ha / yr, sources positive
    ref: str = ""
    status: str = "user"
    note: str = ""


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

    def not_from_papers(self) -> list[ClassCoefficient]:
        """Classes whose value is not printed in a seed paper (to report in the run log)."""
        return [c for c in self.classes if c.status != "paper"]

    def dense_luts(self, dtype: np.dtype, extra_nodata: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, int]:
        """Dense lookup tables over the whole range of an integer ``dtype``.

        Returns ``(class_of_code, coef_lut, code_offset)``: ``class_of_code[code -
        offset]`` is 0..K-1 for the table's classes, K for unknown codes and K+1 for
        nodata; ``coef_lut`` holds the coefficient (float32) or NaN.
        """
        info = np.iinfo(dtype)
        size = int(info.max) - int(info.min) + 1
        offset = int(info.min)
        class_of_code = np.full(size, self.n_classes, dtype=np.int32)
        coef_lut = np.full(size, np.nan, dtype=np.float32)
        for k, c in enumerate(self.classes):
            if info.min <= c.code <= info.max:
                class_of_code[c.code - offset] = k
                coef_lut[c.code - offset] = c.coef
        for code in (*self.nodata, *extra_nodata):
            if code is not None and info.min <= code <= info.max:
                class_of_code[int(code) - offset] = self.n_classes + 1
                coef_lut[int(code) - offset] = np.nan
        return class_of_code, coef_lut, offset


def builtin_legends() -> dict[str, Path]:
    """Built-in coefficient tables by legend id."""
    return {p.stem: p for p in sorted(TABLE_DIR.glob("*.yaml"))}


def _number(value, what: str, path: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CoefficientTableError(f"{what} is not a number: {value!r}", path=path, fix="write a plain number") from None
    if not math.isfinite(number):
        raise CoefficientTableError(f"{what} is not finite: {value!r}", path=path, fix="write a finite number")
    return number


def _code(value, path: str, row: str) -> int:
    number = _number(value, f"class code {value!r} ({row})", path)
    if number != int(number):
        raise CoefficientTableError(f"class code {value!r} ({row}) is not an integer", path=path, fix="class codes are the integer values of the land-cover raster")
    return int(number)


def _build(rows: list[dict], *, legend: str, unit: str, nodata, title: str, references: dict, path: str) -> CoefficientTable:
    if unit not in UNITS:
        raise CoefficientTableError(f"unknown unit {unit!r}", path=path, fix=f"use one of: {', '.join(UNITS)}")
    factor = UNITS[unit]
    if not rows:
        raise CoefficientTableError("the table has no classes", path=path, fix="add one row per land-cover class")
    classes, seen = [], {}
    for i, row in enumerate(rows, start=1):
        where = f"row {i}"
        if "code" not in row or "coef" not in row:
            raise CoefficientTableError(f"{where} lacks 'code' or 'coef'", path=path, fix="every class needs a code and a coef")
        code = _code(row["code"], path, where)
        if code in seen:
            raise CoefficientTableError(f"duplicate class code {code} (rows {seen[code]} and {i})", path=path, fix="keep one row per class code")
        seen[code] = i
        coef = _number(row["coef"], f"coef of class {code}", path) * factor
        status = (row.get("status") or "user").strip()
        if status not in STATUSES:
            raise CoefficientTableError(f"class {code}: status {status!r} is not one of {STATUSES}", path=path, fix="mark the value's provenance")
        ref = str(row.get("ref") or "").strip()
        if references and ref and ref not in references and status != "user":
            raise CoefficientTableError(f"class {code} cites ref {ref!r}, which is not in 'references'", path=path, fix="add the reference or correct the id")
        classes.append(ClassCoefficient(code, str(row.get("name") or code), coef, ref, status, str(row.get("note") or "")))
    nodata_codes = tuple(int(_code(v, path, "nodata")) for v in (nodata if isinstance(nodata, (list, tuple)) else [nodata] if nodata is not None else []))
    clash = sorted(set(nodata_codes) & set(seen))
    if clash:
        raise CoefficientTableError(f"codes {clash} are both classes and nodata", path=path, fix="remove them from one of the two")
    return CoefficientTable(legend, tuple(classes), nodata_codes, title, references, path)


def _read_yaml(path: Path) -> CoefficientTable:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CoefficientTableError(f"not valid YAML ({exc})".replace("\n", " "), path=path, fix="check the file's syntax") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise CoefficientTableError("expected a mapping with a 'classes' list", path=path, fix="see configs/coefficients/README.md for the schema")
    refs = {k: (v.get("citation", "") if isinstance(v, dict) else str(v)) for k, v in (doc.get("references") or {}).items()}
    return _build(
        doc["classes"], legend=str(doc.get("legend", path.stem)), unit=doc.get("unit", "t C / ha / yr"),
        nodata=doc.get("nodata"), title=str(doc.get("title", "")), references=refs, path=str(path),
    )


def _read_csv(path: Path) -> CoefficientTable:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CoefficientTableError("not a UTF-8 text file", path=path, fix="save the table as UTF-8 CSV") from None
    meta, body = {}, []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            key, _, value = line.lstrip("# ").partition(":")
            meta[key.strip().lower()] = value.strip()
        elif line.strip():
            body.append(line)
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    if reader.fieldnames is None or not {"code", "coef"} <= {f.strip() for f in reader.fieldnames}:
        raise CoefficientTableError(
            f"CSV header must include 'code' and 'coef' (found {reader.fieldnames})", path=path,
            fix="use the header code,name,coef,ref,status (see configs/coefficients/README.md)",
        )
    rows = [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in reader]
    nodata = [v for v in meta.get("nodata", "").replace(",", " ").split()]
    return _build(rows, legend=meta.get("legend", path.stem), unit=meta.get("unit", "t C / ha / yr"), nodata=nodata, title=meta.get("title", ""), references={}, path=str(path))


def load_table(legend: str | None = None, path: str | Path | None = None) -> CoefficientTable:
    """Load a built-in table by ``legend`` id, or a user table from ``path`` (CSV or YAML)."""
    if path is None:
        tables = builtin_legends()
        if legend not in tables:
            raise CoefficientTableError(f"no built-in coefficient table for legend {legend!r}", fix=f"use one of: {', '.join(tables)}, or give 'coefficients: <file>'")
        return _read_yaml(tables[legend])
    path = Path(path)
    if not path.is_file():
        problem = "is a folder, not a coefficient table" if path.is_dir() else "coefficient table not found"
        raise CoefficientTableError(problem, path=path, fix="check the 'coefficients' path in the config")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_yaml(path)
    return _read_csv(path)

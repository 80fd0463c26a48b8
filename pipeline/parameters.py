"""Parameter tables: numbers per land-cover class, keyed by class code or by category.

A parameter table is apart from the legend (:mod:`lucr.legend`): the same seed-paper
flux coefficients (keyed by category: forest, grassland, ...) serve every legend whose
classes name their category, and a user table keyed by code serves one legend. Each row
carries its source (``ref``) and how it was obtained (``status``), so values not printed
in a seed paper are reported (methods.md: "never silently invented").

Kinds of table (:data:`KINDS`) declare their value columns and accepted units:

- ``flux``: ``coef``, carbon flux density, t C / ha / yr, sources positive (methods.md §1);
- ``pools``: ``c_above, c_below, c_soil, c_dead``, carbon stock density, t C / ha (methods.md §4,
  InVEST's carbon pools).

A row may give the uncertainty of a value ``v`` as a range, ``v_low`` and ``v_high`` (the value
inside it), or as a standard deviation ``v_sd``, with ``range_ref`` naming its source. The
risk Monte Carlo (:mod:`lucr.analysis.risk`) draws flux coefficients from them (triangular
low-coef-high, or normal) before any assumed default.

Built-in tables live in ``configs/parameters/<id>.yaml`` (schema in that folder's README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, create_model, field_validator

from lucr.configs import CONFIG_DIR
from lucr.errors import CoefficientTableError
from lucr.legend import Category, Legend, LegendClass, ReferenceEntry, _Strict, builtin_files, find_file, read_yaml_file

PARAMETER_DIR = CONFIG_DIR / "parameters"
STATUSES = ("paper", "literature_default", "unverified", "user")
CO2_PER_C = 44.0 / 12.0


@dataclass(frozen=True)
class Kind:
    """A kind of parameter table: its value columns and units (factor to the canonical unit)."""

    columns: tuple[str, ...]
    units: dict[str, float]

    @property
    def unit(self) -> str:
        """The canonical unit (the first)."""
        return next(iter(self.units))


KINDS = {
    "flux": Kind(("coef",), {"t C / ha / yr": 1.0, "t CO2 / ha / yr": 1.0 / CO2_PER_C}),
    "pools": Kind(("c_above", "c_below", "c_soil", "c_dead"), {"t C / ha": 1.0, "t CO2 / ha": 1.0 / CO2_PER_C}),
}


@dataclass(frozen=True)
class ParameterRow:
    """One row: the key (code or category), values in the canonical unit, provenance."""

    key: int | str
    values: dict[str, float]
    name: str = ""
    ref: str = ""
    status: str = "user"
    note: str = ""
    spread: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # column -> ("range", low, high) or ("sd", sd, sd)
    range_ref: str = ""


@dataclass(frozen=True)
class ParameterTable:
    """Values per class code or per category, with their sources."""

    id: str
    kind: str
    key: Literal["code", "category"]
    rows: tuple[ParameterRow, ...]
    title: str = ""
    references: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    def row_for(self, cls: LegendClass) -> ParameterRow | None:
        """The row that applies to a legend class (by its code or its category)."""
        wanted = cls.code if self.key == "code" else cls.category
        return next((r for r in self.rows if r.key == wanted), None)

    def resolve(self, legend: Legend) -> list[ParameterRow]:
        """The row of every class of ``legend``, in legend order; raises naming the classes without one."""
        rows = [self.row_for(c) for c in legend.classes]
        missing = [f"{c.code} ({c.name}{', category ' + str(c.category) if self.key == 'category' else ''})" for c, r in zip(legend.classes, rows) if r is None]
        if missing:
            raise CoefficientTableError(
                f"{self.kind} table '{self.id}' has no row for class(es) {', '.join(missing)} of legend '{legend.id}'", path=self.path,
                fix=f"add a row per {'code' if self.key == 'code' else 'category'} to the table, or give a table for this legend",
            )
        if self.key == "code":
            extra = sorted(set(r.key for r in self.rows) - set(legend.codes.tolist()))
            if extra:
                raise CoefficientTableError(
                    f"{self.kind} table '{self.id}' has rows for codes {extra} that legend '{legend.id}' lacks", path=self.path,
                    fix="remove those rows, or use the legend the table was written for",
                )
        return rows

    def per_class(self, legend: Legend, column: str) -> np.ndarray:
        """Values of ``column`` for each class of ``legend`` (float64, legend order)."""
        return np.array([r.values[column] for r in self.resolve(legend)], dtype=np.float64)


# -- files -----------------------------------------------------------------------------


class _RowBase(_Strict):
    code: int | None = None
    category: Category = None
    name: str = ""
    ref: str = ""
    status: Literal["paper", "literature_default", "unverified", "user"] = "user"
    note: str = ""
    range_ref: str = ""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_ROW_MODELS = {
    kind: create_model(
        f"{kind.title()}Row", __base__=_RowBase, __validators__={"finite": field_validator(*spec.columns)(_finite)},
        **{c: (float, ...) for c in spec.columns},
        **{f"{c}_{end}": (float | None, None) for c in spec.columns for end in ("low", "high", "sd")},
    )
    for kind, spec in KINDS.items()
}


class ParameterFile(_Strict):
    """Schema of ``configs/parameters/<id>.yaml`` (rows validated per kind)."""

    table: str
    kind: Literal["flux", "pools"]
    key: Literal["code", "category"]
    unit: str | None = None
    title: str = ""
    sign: str = ""
    references: dict[str, ReferenceEntry] = {}
    rows: list[dict] = Field(min_length=1)


def build_table(doc: ParameterFile, path: str | None) -> ParameterTable:
    """Check a parsed parameter file (keys, units, refs, duplicates) and convert to the canonical unit."""
    from pydantic import ValidationError

    from lucr.config import _explain

    spec = KINDS[doc.kind]
    unit = doc.unit or spec.unit
    if unit not in spec.units:
        raise CoefficientTableError(f"unknown unit {unit!r} for a {doc.kind} table", path=path, fix=f"use one of: {', '.join(spec.units)}")
    factor = spec.units[unit]
    rows, seen = [], {}
    for i, raw in enumerate(doc.rows, start=1):
        try:
            row = _ROW_MODELS[doc.kind].model_validate(raw)
        except ValidationError as exc:
            raise CoefficientTableError(_explain(exc, _ROW_MODELS[doc.kind], prefix=f"rows[{i}]"), path=path, fix=f"see {PARAMETER_DIR.name}/README.md for the columns of a {doc.kind} table") from None
        key = row.code if doc.key == "code" else row.category
        if key is None:
            raise CoefficientTableError(f"row {i} has no '{doc.key}' (the table is keyed by {doc.key})", path=path, fix=f"give every row a '{doc.key}'")
        if key in seen:
            raise CoefficientTableError(f"duplicate {doc.key} {key!r} (rows {seen[key]} and {i})", path=path, fix=f"keep one row per {doc.key}")
        seen[key] = i
        if doc.references and row.ref and row.ref not in doc.references and row.status != "user":
            raise CoefficientTableError(f"row {i} cites ref {row.ref!r}, which is not in 'references'", path=path, fix="add the reference or correct the id")
        values = {c: getattr(row, c) * factor for c in spec.columns}
        spread = spreads({c: getattr(row, c) for c in spec.columns}, {f: getattr(row, f) for f in row.model_fields if f.endswith(("_low", "_high", "_sd"))}, factor, path, f"row {i}")
        if row.range_ref and doc.references and row.range_ref not in doc.references:
            raise CoefficientTableError(f"row {i} cites range_ref {row.range_ref!r}, which is not in 'references'", path=path, fix="add the reference or correct the id")
        rows.append(ParameterRow(key, values, row.name, row.ref, row.status, row.note, spread, row.range_ref))
    refs = {k: v.citation for k, v in doc.references.items()}
    return ParameterTable(doc.table, doc.kind, doc.key, tuple(rows), doc.title, refs, path)


def spreads(values: dict[str, float], bounds: dict[str, float | None], factor: float, path, where: str) -> dict[str, tuple[str, float, float]]:
    """The uncertainty of each value from its ``_low``/``_high`` or ``_sd`` fields (table unit; x ``factor``
    to the canonical unit). Both ends or neither, the value inside the range, sd > 0, not both forms."""
    out = {}
    for c, v in values.items():
        low, high, sd = (bounds.get(f"{c}_{end}") for end in ("low", "high", "sd"))
        if (low is None) != (high is None):
            raise CoefficientTableError(f"{where}: {c}_low and {c}_high go together", path=path, fix=f"give both ends of the range of {c}, or neither")
        if low is not None and sd is not None:
            raise CoefficientTableError(f"{where}: {c} has both a range and a standard deviation", path=path, fix="keep one of them")
        if low is not None:
            if not all(math.isfinite(x) for x in (low, high)) or not low <= v <= high or low == high:
                raise CoefficientTableError(f"{where}: the range [{low:g}, {high:g}] of {c} does not hold its value {v:g}", path=path,
                                            fix=f"give {c}_low <= {c} <= {c}_high, with low < high")
            lo, hi = sorted((low * factor, high * factor))
            out[c] = ("range", lo, hi)
        elif sd is not None:
            if not (math.isfinite(sd) and sd > 0):
                raise CoefficientTableError(f"{where}: {c}_sd must be a positive number (got {sd!r})", path=path, fix="give the standard deviation in the table's unit")
            out[c] = ("sd", sd * abs(factor), sd * abs(factor))
    return out


def builtin_parameter_files() -> dict[str, Path]:
    """Built-in parameter tables by id."""
    return builtin_files(PARAMETER_DIR)


def load_parameters(table: str | Path) -> ParameterTable:
    """A built-in parameter table by id, or a parameter-table YAML file."""
    path = find_file(table, PARAMETER_DIR, "parameter table")
    return build_table(read_yaml_file(path, ParameterFile), str(path))

"""Land-cover legends, and the one mapping from class codes to cross-tab columns.

A *legend* says what the codes of a land-cover raster mean: each class's code, name and
the ``category`` it belongs to (the seed papers' land-use categories: cropland, forest,
grassland, water, built_up, unused, orchard), plus the codes that mean no data. It holds
no numbers: those are *parameter tables* (:mod:`lucr.parameters`) keyed by code or by
category. Built-in legends live in ``configs/legends/<id>.yaml`` (schema in that folder's
README) and are validated like the run config: an unknown key is an error naming the
nearest valid one.

:class:`ClassColumns` owns the layout every cross-tab, kernel lookup table, zonal table
and summary shares: the legend's K classes in legend order (columns ``0..K-1``), then
``unknown`` (K: codes the legend lacks), then ``nodata`` (K+1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from lucr.configs import CONFIG_DIR
from lucr.errors import CoefficientTableError
from lucr.yaml_strict import load_yaml

LEGEND_DIR = CONFIG_DIR / "legends"
#: Land-use categories of the seed papers (methods.md §1, seed 001 Table 2), which
#: category-keyed parameter tables use as keys.
CATEGORIES = ("cropland", "orchard", "forest", "grassland", "water", "built_up", "unused")


@dataclass(frozen=True)
class LegendClass:
    """One class of a legend: raster code, name, land-use category (or None) and a note."""

    code: int
    name: str
    category: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Legend:
    """What the codes of a land-cover raster mean (no numbers: see :mod:`lucr.parameters`)."""

    id: str
    classes: tuple[LegendClass, ...]
    nodata: tuple[int, ...] = ()
    title: str = ""
    references: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)  # kind -> id of the default parameter table
    path: str | None = None

    @property
    def codes(self) -> np.ndarray:
        return np.array([c.code for c in self.classes], dtype=np.int64)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def columns(self, dtype: np.dtype, extra_nodata: tuple[int | None, ...] = ()) -> "ClassColumns":
        """The cross-tab column layout of this legend for rasters of integer ``dtype``."""
        return ClassColumns.build(self.codes, (*self.nodata, *extra_nodata), dtype)


@dataclass(frozen=True)
class ClassColumns:
    """Class codes -> cross-tab columns: K classes (legend order), then unknown, then nodata.

    ``class_of_code[code - offset]`` is dense over the whole range of the raster's integer
    type, so a kernel looks a code up with one subtraction and one index.

    Examples
    --------
    >>> cols = ClassColumns.build(np.array([1, 13]), (255,), np.dtype("uint8"))
    >>> cols.class_of_code[[1, 13, 7, 255]].tolist()  # forest, urban, unknown, nodata
    [0, 1, 2, 3]
    >>> cols.lut([-0.644, 55.8])[[1, 7]].tolist()
    [-0.6439999938011169, nan]
    """

    codes: np.ndarray  # (K,) int64 class codes in legend order
    class_of_code: np.ndarray  # dense int32, indexed by code - offset
    offset: int

    @classmethod
    def build(cls, codes: np.ndarray, nodata: tuple[int | None, ...], dtype: np.dtype) -> "ClassColumns":
        info = np.iinfo(dtype)
        offset = int(info.min)
        k = len(codes)
        class_of_code = np.full(int(info.max) - offset + 1, k, dtype=np.int32)
        for j, code in enumerate(codes):
            if info.min <= code <= info.max:
                class_of_code[int(code) - offset] = j
        for code in nodata:
            if code is not None and info.min <= code <= info.max:
                class_of_code[int(code) - offset] = k + 1
        return cls(np.asarray(codes, dtype=np.int64), class_of_code, offset)

    @property
    def n_classes(self) -> int:
        return len(self.codes)

    def column_of(self, codes: np.ndarray) -> np.ndarray:
        """Cross-tab column of each code (vectorised; as the kernels look codes up)."""
        k = np.asarray(codes, dtype=np.int64) - self.offset
        inside = (k >= 0) & (k < self.class_of_code.shape[0])
        return np.where(inside, self.class_of_code[np.where(inside, k, 0)], self.nodata).astype(np.int64)

    @property
    def unknown(self) -> int:
        """Column of codes the legend lacks."""
        return self.n_classes

    @property
    def nodata(self) -> int:
        """Column of nodata codes (the legend's and the raster's)."""
        return self.n_classes + 1

    @property
    def n_columns(self) -> int:
        return self.n_classes + 2

    def lut(self, per_class, dtype=np.float32, fill=np.nan) -> np.ndarray:
        """Dense lookup table over codes: ``per_class[j]`` for class j's code, ``fill`` elsewhere."""
        out = np.full(self.class_of_code.shape, fill, dtype=dtype)
        is_class = self.class_of_code < self.n_classes
        out[is_class] = np.asarray(per_class, dtype=dtype)[self.class_of_code[is_class]]
        return out

    def classes(self, crosstab: np.ndarray) -> np.ndarray:
        """The class columns of a cross-tab (``[..., :K]``)."""
        return crosstab[..., : self.n_classes]

    def unknown_codes(self, code_count: np.ndarray) -> dict[int, int]:
        """``{code: cell count}`` of counted codes that are neither classes nor nodata."""
        idx = np.flatnonzero((self.class_of_code == self.unknown) & (code_count > 0))
        return {int(i) + self.offset: int(code_count[i]) for i in idx}


# -- files -----------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferenceEntry(_Strict):
    """A citation in a legend or parameter file."""

    citation: str
    kind: str = Field("literature", pattern="^(paper|literature)$", description="paper: a seed paper; literature: anything else")


def _known_category(value: str | None) -> str | None:
    if value is not None and value not in CATEGORIES:
        raise ValueError(f"category {value!r} is not one of {', '.join(CATEGORIES)}")
    return value


#: A land-use category field of a legend or parameter file (one of :data:`CATEGORIES`).
Category = Annotated[str | None, AfterValidator(_known_category)]


class LegendClassEntry(_Strict):
    code: int
    name: str
    category: Category = None
    note: str = ""


class LegendFile(_Strict):
    """Schema of ``configs/legends/<id>.yaml``."""

    legend: str
    title: str = ""
    nodata: list[int] = []
    parameters: dict[str, str] = Field({}, description="kind -> default parameter table id, e.g. {flux: flux_seed001}")
    references: dict[str, ReferenceEntry] = {}
    classes: list[LegendClassEntry] = Field(min_length=1)

    @field_validator("classes")
    @classmethod
    def _unique_codes(cls, classes: list[LegendClassEntry]) -> list[LegendClassEntry]:
        seen: dict[int, int] = {}
        for i, c in enumerate(classes, start=1):
            if c.code in seen:
                raise ValueError(f"duplicate class code {c.code} (entries {seen[c.code]} and {i})")
            seen[c.code] = i
        return classes


def read_yaml_file(path: Path, model: type[BaseModel], error: type[Exception] = CoefficientTableError):
    """Parse a YAML file into ``model``; every problem becomes ``error`` naming the file and the key."""
    from lucr.config import _explain

    doc = load_yaml(path, error=error, fix="check the file's syntax")
    try:
        return model.model_validate(doc if doc is not None else {})
    except ValidationError as exc:
        raise error(_explain(exc, model), path=path, fix=f"see {path.parent.name}/README.md for the schema") from None


def builtin_files(folder: Path) -> dict[str, Path]:
    """The built-in YAML files of a ``configs/`` folder by id (file stem)."""
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find_file(name: str | Path, folder: Path, what: str) -> Path:
    """A built-in file of ``folder`` by id, or a path (anything with a suffix); raises naming the choices."""
    path = builtin_files(folder).get(str(name)) if not Path(str(name)).suffix else Path(name)
    if path is None:
        raise CoefficientTableError(f"no built-in {what} {str(name)!r}", fix=f"use one of: {', '.join(builtin_files(folder))}, or the path of a {what} YAML file")
    if not path.is_file():
        raise CoefficientTableError(f"{what} file not found", path=path, fix=f"check the {what}'s path in the config")
    return path


def builtin_legend_files() -> dict[str, Path]:
    """Built-in legends by id."""
    return builtin_files(LEGEND_DIR)


def load_legend(legend: str | Path) -> Legend:
    """A built-in legend by id (``lucr legends``), or a legend YAML file."""
    path = find_file(legend, LEGEND_DIR, "legend")
    doc = read_yaml_file(path, LegendFile)
    clash = sorted(set(doc.nodata) & {c.code for c in doc.classes})
    if clash:
        raise CoefficientTableError(f"codes {clash} are both classes and nodata", path=path, fix="remove them from one of the two")
    return Legend(
        id=doc.legend, classes=tuple(LegendClass(c.code, c.name, c.category, c.note) for c in doc.classes), nodata=tuple(doc.nodata),
        title=doc.title, references={k: v.citation for k, v in doc.references.items()}, parameters=dict(doc.parameters), path=str(path),
    )

"""Time-series and spatial analysis of per-unit tables (methods.md §5-§6).

Input is a long table, one row per unit-year: the zonal tables of a ``lucr run`` (all
its land-cover years) or any table a user brings to ``lucr analyze``. Per variable it
builds a unit x year panel (:mod:`lucr.analysis.panel`, missing-year policy applied)
and runs

- ``forecast``: GM(1,1), linear, growth-rate and ensemble forecasts with their fit
  statistics (:mod:`lucr.analysis.forecast`; needs 4 or more years);
- ``relational``: grey relational degrees of comparison columns to a reference
  column per unit (:mod:`lucr.analysis.grey_relational`; 3 or more years);
- ``moran``: global Moran's I per year and LISA clusters per unit-year
  (:mod:`lucr.analysis.weights`, :mod:`lucr.analysis.autocorrelation`; needs polygons);
- ``gravity``: centre of gravity and standard deviational ellipse per year, and the
  trajectory between years (:mod:`lucr.analysis.gravity`; needs polygons; the trajectory
  2 or more years).

Which sections run is decided from the settings and the table's shape alone
(:func:`plan`), so output names are known before any work starts.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from lucr.config import AnalysisConfig
from lucr.errors import AnalysisError
from lucr.analysis.panel import UNDATED, equally_spaced, match_ids, normalise_ids, to_panel

log = logging.getLogger("lucr")
MIN_YEARS = {"forecast": 4, "relational": 3, "trajectory": 2}
#: Output tables of each section (``analysis_<label>_<name>``).
SECTION_TABLES = {
    "forecast": ("forecast", "forecast_fit"),
    "relational": ("grey_relational",),
    "moran": ("moran", "lisa"),
    "gravity": ("gravity", "gravity_ellipses"),
    "trajectory": ("gravity_track",),
}


@dataclass
class UnitTable:
    """A long per-unit table and, optionally, the polygons of its units."""

    frame: pd.DataFrame
    id_col: str
    year_col: str | None
    label: str                                  # names the outputs, e.g. "provinces"
    polygons: gpd.GeoDataFrame | None = None    # with a column ``unit_id`` (and ``name``)
    source: str | Path | None = None
    polygons_source: str | Path | None = None

    @property
    def years(self) -> list[int]:
        return [UNDATED] if self.year_col is None else sorted(int(y) for y in self.frame[self.year_col].dropna().unique())


@dataclass
class AnalysisResult:
    """The tables (name -> DataFrame or GeoDataFrame) and a JSON-able summary."""

    label: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def plan(settings: AnalysisConfig, n_years: int, has_polygons: bool) -> list[str]:
    """The sections that will run for a table of ``n_years`` years."""
    sections = []
    if settings.forecast is not None and n_years >= MIN_YEARS["forecast"]:
        sections.append("forecast")
    if settings.relational is not None and n_years >= MIN_YEARS["relational"]:
        sections.append("relational")
    if has_polygons and settings.spatial is not None:
        sections.append("moran")
    if has_polygons and settings.gravity:
        sections.append("gravity")
        if n_years >= MIN_YEARS["trajectory"]:
            sections.append("trajectory")
    return sections


def table_stems(label: str, sections: list[str]) -> list[str]:
    return [f"analysis_{label}_{name}" for s in sections for name in SECTION_TABLES[s]] + [f"analysis_{label}_summary"]


def output_names(label: str, sections: list[str], formats: list[str]) -> list[str]:
    """File names the analysis of one table writes (tables in each format, one JSON summary)."""
    stems = table_stems(label, sections)
    return [f"{stem}.{fmt}" for stem in stems[:-1] for fmt in formats] + [f"{stems[-1]}.json"]


def analyse(table: UnitTable, settings: AnalysisConfig, strict: bool = True) -> AnalysisResult:
    """Run every section :func:`plan` selects on one table.

    ``strict=False`` (inside ``lucr run``, after the pass) turns a section's
    :class:`AnalysisError` into a warning and a ``failed`` entry of the summary, so one
    unsuitable variable does not cost the run its zonal outputs.
    """
    years = table.years if settings.years is None else sorted(settings.years)
    sections = plan(settings, len(years), table.polygons is not None)
    skipped = [s for s in ("forecast", "relational") if getattr(settings, s) is not None and s not in sections]
    what = {"forecast": "forecasts", "relational": "grey relational analysis"}
    for s in skipped:  # said without the table's name: once for all levels of a run
        log.info("%s skipped: %d or more years needed, %d given", what[s], MIN_YEARS[s], len(years))
    if table.polygons is None and (settings.spatial is not None or settings.gravity):
        log.info("Moran's I, LISA and centres of gravity skipped: the table has no polygons (give --polygons FILE)")
    result = AnalysisResult(label=table.label)
    result.summary = {"label": table.label, "years": years if table.year_col else None, "sections": sections, "skipped": skipped, "panels": []}
    panels: dict[str, pd.DataFrame] = {}

    def panel(variable: str) -> pd.DataFrame:
        if variable not in panels:
            frame, report = to_panel(table.frame, table.id_col, table.year_col, variable, years=settings.years, missing=settings.missing_years)
            result.summary["panels"].append(report.as_dict())
            panels[variable] = frame
        return panels[variable]

    units = None
    if table.polygons is not None:
        units, ids = _polygons(table)
        table = replace(table, frame=table.frame.assign(**{table.id_col: ids}))
    steps = {
        "forecast": lambda: _forecast(result, {v: panel(v) for v in settings.variables}, settings),
        "relational": lambda: _relational(result, table, panel, settings),
        "moran": lambda: _moran(result, units, {v: panel(v) for v in settings.variables}, settings),
        "gravity": lambda: _gravity(result, units, {v: panel(v) for v in settings.gravity}, trajectory="trajectory" in sections),
    }
    for section, step in steps.items():
        if section not in sections:
            continue
        try:
            step()
        except AnalysisError as exc:
            if strict:
                raise
            log.warning("%s: %s not computed: %s", table.label, section, exc)
            result.summary.setdefault("failed", {})[section] = str(exc)
    if table.year_col is None:
        for frame in result.tables.values():
            if "year" in frame.columns:
                frame["year"] = pd.NA
    return result


def _polygons(table: UnitTable) -> tuple[gpd.GeoDataFrame, pd.Index]:
    """The polygons of the table's units (every table id must have one), and the table's ids in the polygons' terms."""
    table_ids, polygon_ids = normalise_ids(pd.Index(table.frame[table.id_col]), table.polygons["unit_id"])
    match_ids(table_ids.unique(), polygon_ids, table=table.source, polygons=table.polygons_source)
    units = table.polygons.assign(unit_id=polygon_ids.to_numpy())
    return units[units["unit_id"].isin(set(table_ids))].reset_index(drop=True), table_ids


def _horizon(settings: AnalysisConfig, years: list[int]) -> int:
    cfg = settings.forecast
    if cfg.horizon is not None:
        return cfg.horizon
    step = years[1] - years[0]
    if cfg.until is None:
        return 5
    if cfg.until <= years[-1]:
        raise AnalysisError(f"forecast.until ({cfg.until}) is not after the last year of the table ({years[-1]})", fix="give a later year, or 'horizon' in steps")
    return math.ceil((cfg.until - years[-1]) / step)


def _forecast(result: AnalysisResult, panels: dict[str, pd.DataFrame], settings: AnalysisConfig) -> None:
    from lucr.analysis import forecast as fc

    values, fits = [], []
    for variable, frame in panels.items():
        if frame.empty:
            continue
        if not equally_spaced(frame.columns):
            raise AnalysisError(f"forecasts need equally spaced years; the table has {list(frame.columns)}", fix="restrict analysis.years to evenly spaced years")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", fc.GreyModelWarning)
            runs = fc.forecast_panel(frame, _horizon(settings, list(frame.columns)), methods=tuple(settings.forecast.methods))
        for w in caught:
            log.warning("%s: %s", variable, w.message)
        for method, run in runs.items():
            failed = run.stats.index[run.stats["status"] != "ok"]
            if len(failed):
                log.warning("%s, %s: %d unit(s) not modelled, e.g. %s: %s", variable, method, len(failed), failed[0], run.stats.loc[failed[0], "status"])
        for method, run in runs.items():
            fitted = run.fitted.rename_axis(index="unit_id", columns="year").stack(future_stack=True).rename("value").reset_index()
            fitted["observed"] = frame.rename_axis(index="unit_id", columns="year").stack(future_stack=True).to_numpy()
            fitted["kind"] = "fitted"
            future = run.forecast.rename_axis(index="unit_id", columns="year").stack(future_stack=True).rename("value").reset_index()
            future["observed"], future["kind"] = np.nan, "forecast"
            values.append(pd.concat([fitted, future]).assign(variable=variable, method=method))
            fits.append(run.stats.rename_axis(index="unit_id").reset_index().assign(variable=variable, method=method))
            grades = run.stats["grade"].value_counts().to_dict() if "grade" in run.stats else None
            result.summary.setdefault("forecast", []).append({"variable": variable, "method": method, "units": int((run.stats["status"] == "ok").sum()), **({"grades": grades} if grades else {})})
    columns = ["unit_id", "variable", "method", "year", "kind", "observed", "value"]
    result.tables["forecast"] = pd.concat(values)[columns].sort_values(["variable", "method", "unit_id", "year"], kind="stable").reset_index(drop=True) if values else pd.DataFrame(columns=columns)
    fit = pd.concat(fits) if fits else pd.DataFrame(columns=["unit_id", "variable", "method", "status"])
    result.tables["forecast_fit"] = fit[["unit_id", "variable", "method"] + [c for c in fit.columns if c not in ("unit_id", "variable", "method")]].reset_index(drop=True)


def _relational(result: AnalysisResult, table: UnitTable, panel, settings: AnalysisConfig) -> None:
    from lucr.analysis import grey_relational as gra

    cfg = settings.relational
    compare = [c for c in table.frame.columns if str(c).startswith("area_ha_class_")] if cfg.compare == "classes" else list(cfg.compare)
    if not compare:
        raise AnalysisError("relational.compare is 'classes' but the table has no area_ha_class_<code> columns", fix="list the comparison columns under analysis.relational.compare")
    reference = panel(cfg.reference)
    comparisons = {c: panel(c) for c in compare}
    common = reference.index
    for frame in comparisons.values():
        common = common.intersection(frame.index)
    degrees = gra.grey_relational_panel(reference.loc[common], {c: f.loc[common] for c, f in comparisons.items()}, normalise=cfg.normalise, rho=cfg.rho)
    degrees.insert(1, "reference", cfg.reference)
    result.tables["grey_relational"] = degrees.reset_index(drop=True)


def _moran(result: AnalysisResult, units: gpd.GeoDataFrame, panels: dict[str, pd.DataFrame], settings: AnalysisConfig) -> None:
    from lucr.analysis import autocorrelation, weights  # esda and libpysal load only when needed

    cfg = settings.spatial
    weights_for: dict[frozenset, "weights.SpatialWeights"] = {}
    morans, lisas = [], []
    for variable, frame in panels.items():
        ids = frozenset(frame.index)
        if ids not in weights_for:
            weights_for[ids] = weights.build_weights(
                units[units["unit_id"].isin(ids)], "unit_id", kind=cfg.weights, k=cfg.k, distance_km=cfg.distance_km, islands=cfg.islands, island_k=cfg.island_k,
            )
        w = weights_for[ids]
        values = frame.drop(index=[i for i in w.excluded if i in frame.index])
        moran, lisa = autocorrelation.moran_panel(values, w, variable, permutations=cfg.permutations, seed=cfg.seed, alpha=cfg.alpha)
        morans.append(moran.assign(weights=w.kind, permutations=cfg.permutations, seed=cfg.seed))
        lisas.append(lisa)
        result.summary.setdefault("weights", {})[variable] = {"kind": w.kind, "islands": [str(i) for i in w.islands], "island_policy": w.island_policy, "excluded": [str(i) for i in w.excluded]}
    result.tables["moran"] = pd.concat(morans, ignore_index=True)
    lisa = pd.concat(lisas, ignore_index=True)
    keep = [c for c in ("unit_id", "name", "geometry") if c in units.columns]
    result.tables["lisa"] = gpd.GeoDataFrame(lisa.merge(units[keep], on="unit_id", how="left"), geometry="geometry", crs=units.crs)
    result.summary["moran"] = result.tables["moran"][["variable", "year", "I", "p_sim"]].to_dict(orient="records")


def _gravity(result: AnalysisResult, units: gpd.GeoDataFrame, panels: dict[str, pd.DataFrame], trajectory: bool) -> None:
    from lucr.analysis import gravity

    points, ellipses, tracks = [], [], []
    for variable, frame in panels.items():
        weights, basis = frame, "value"
        values = frame.to_numpy()
        if (values < 0).any() and (values > 0).any():
            log.warning("%s: centre of gravity skipped: the values have both signs (a weighted centre needs one sign)", variable)
            result.summary.setdefault("gravity_skipped", {})[variable] = "values of both signs"
            continue
        if (values < 0).any():
            weights, basis = -frame, "magnitude"  # a sink (negative by convention): its magnitude weights the centre
            log.info("%s: centre of gravity weighted by the magnitude of the (negative) values", variable)
        try:
            centres = gravity.centre_of_gravity(units, "unit_id", weights)
            ellipse = gravity.deviational_ellipses(units, "unit_id", weights)
        except AnalysisError as exc:
            raise AnalysisError(f"centre of gravity of '{variable}': {exc.problem}", fix=exc.fix) from None
        if trajectory:
            steps = gravity.gravity_trajectory(centres)
            pts, line = gravity.trajectory_features(centres, steps)
            tracks.append(line.assign(variable=variable, weight=basis))
        else:
            pts, _ = gravity.trajectory_features(centres, None)
        points.append(pts.assign(variable=variable, weight=basis))
        ellipses.append(ellipse.assign(variable=variable, weight=basis))
    if not points:
        return
    result.tables["gravity"] = _first_columns(pd.concat(points, ignore_index=True), ["variable", "weight"])
    result.tables["gravity_ellipses"] = _first_columns(pd.concat(ellipses, ignore_index=True), ["variable", "weight"])
    if trajectory and tracks:
        result.tables["gravity_track"] = _first_columns(pd.concat(tracks, ignore_index=True), ["variable", "weight"])


def _first_columns(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return frame[first + [c for c in frame.columns if c not in first]]


def write(result: AnalysisResult, path_of, formats: list[str]) -> None:
    """Write every table in ``formats`` and the summary; ``path_of(name)`` gives the staging path."""
    from lucr.export import write_frame

    for name, frame in result.tables.items():
        write_frame(frame, f"analysis_{result.label}_{name}", formats, path_of)
    path_of(f"analysis_{result.label}_summary.json").write_text(json.dumps(result.summary, indent=2, ensure_ascii=False, default=_jsonable), encoding="utf-8")


def analyse_file(
    table_path: str | Path, *, id_col: str, year_col: str | None, settings: AnalysisConfig, out_dir: str | Path,
    polygons_path: str | Path | None = None, polygons_id: str | None = None, polygons_layer: str | None = None,
    name_col: str | None = None, table_layer: str | None = None, formats: tuple[str, ...] = ("gpkg", "csv", "parquet"), overwrite: bool = False,
) -> tuple[AnalysisResult, list[Path]]:
    """``lucr analyze``: one per-unit table (and optional polygons) -> analysis tables in ``out_dir``.

    Outputs are staged and published together, as for ``lucr run``.
    """
    from lucr.errors import InputFileError
    from lucr.export import StagedOutputs
    from lucr.analysis.panel import check_unique, read_unit_table, require_columns

    table_path = Path(table_path)
    frame = read_unit_table(table_path, layer=table_layer)
    if polygons_path is None and _has_geometry(table_path, table_layer):  # e.g. a zonal GeoPackage of lucr run: its own polygons
        polygons_path, polygons_layer = table_path, table_layer
        name_col = name_col or ("name" if "name" in frame.columns else None)
        log.info("%s: using its own polygons for Moran's I, LISA and centres of gravity", table_path.name)
    require_columns(frame, [id_col] + ([year_col] if year_col else []), what="id/year column", source=table_path)
    require_columns(frame, settings.columns(with_polygons=polygons_path is not None), what="analysis column", source=table_path, numeric=True)
    if year_col is not None:
        if not pd.api.types.is_integer_dtype(frame[year_col]):
            as_int = pd.to_numeric(frame[year_col], errors="coerce")
            if as_int.isna().any() or (as_int % 1 != 0).any():
                raise AnalysisError(f"year column '{year_col}' holds values that are not whole years", path=table_path, fix="give years as integers (e.g. 2019)")
            frame = frame.assign(**{year_col: as_int.astype(int)})
    if frame[id_col].isna().any():
        rows = (frame.index[frame[id_col].isna()] + 2).tolist()[:10]  # 1-based, after the header line
        raise InputFileError(f"id column '{id_col}' is empty in row(s) {rows}", path=table_path, fix="give every row a unit id, or delete those rows")
    check_unique(frame, id_col, year_col, source=table_path)
    polygons = None
    if polygons_path is not None:
        polygons = _read_polygons(Path(polygons_path), polygons_id or id_col, name_col, polygons_layer)
    label = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in table_path.stem)
    table = UnitTable(frame=frame, id_col=id_col, year_col=year_col, label=label, polygons=polygons, source=table_path, polygons_source=polygons_path)
    years = table.years if settings.years is None else settings.years
    names = output_names(label, plan(settings, len(years), polygons is not None), list(formats))
    with StagedOutputs(Path(out_dir), names, overwrite) as staged:
        result = analyse(table, settings)
        write(result, staged.path, list(formats))
        return result, staged.commit()


def _has_geometry(path: Path, layer: str | None) -> bool:
    """Whether a per-unit table file holds polygons (GeoPackage, shapefile, GeoJSON, GeoParquet)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return False
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return b"geo" in (pq.read_schema(path).metadata or {})
    import pyogrio

    from lucr.io import data_layer

    try:
        return pyogrio.read_info(path, layer=data_layer(path, layer, fix="")).get("geometry_type") not in (None, "Unknown", "None")
    except Exception:  # not a vector file: read_unit_table says so
        return False


def _read_polygons(path: Path, id_col: str, name_col: str | None, layer: str | None) -> gpd.GeoDataFrame:
    from lucr.errors import InputFileError, MissingCRSError
    from lucr.analysis.panel import require_columns

    if not path.exists():
        raise InputFileError("polygon file not found", path=path, fix="give the path of a GeoPackage, shapefile or GeoJSON of the units")
    from lucr.io import data_layer

    try:
        units = gpd.read_file(path, layer=data_layer(path, layer, fix="give the layer: --polygons-layer NAME"), engine="pyogrio")
    except InputFileError:
        raise
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputFileError(f"cannot read the polygons ({str(exc).splitlines()[0]})", path=path, fix="give a GeoPackage, shapefile or GeoJSON (and --polygons-layer if it has several layers)") from None
    if units.crs is None:
        raise MissingCRSError("the polygons have no coordinate reference system", path=path, fix="assign one, e.g. ogr2ogr -a_srs EPSG:4326 out.gpkg in.gpkg")
    require_columns(units, [id_col] + ([name_col] if name_col else []), what="polygon id/name column", source=path)
    if units[id_col].duplicated().any():
        dup = units.loc[units[id_col].duplicated(), id_col].unique()[:10]
        raise InputFileError(f"polygon ids repeat: {', '.join(map(str, dup))}", path=path, fix="dissolve the polygons by id first (one feature per unit)")
    out = units.rename(columns={id_col: "unit_id"}).assign(name=units[name_col] if name_col else None)
    return out[["unit_id", "name", "geometry"]]


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if np.isnan(value) else float(value)
    if value is pd.NA:
        return None
    return str(value)


__all__ = ["UnitTable", "AnalysisResult", "plan", "output_names", "analyse", "analyse_file", "write"]

"""One lucr run: config -> inputs -> a single pass -> COG + zonal tables, staged atomically."""

from __future__ import annotations

import difflib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import dask
import dask.threaded
import numpy as np
import pandas as pd
from rasterio.errors import RasterioIOError

from lucr import analysis, balance
from lucr.area import from_fixed_point, fixed_point_scale_bits, row_cell_area_ha
from lucr.coefficients import CoefficientTable, load_table
from lucr.config import RunConfig, ZoneLevelConfig
from lucr.errors import ConfigError, InputFileError, LucrError, UnknownClassError
from lucr.export import (
    STREAMED_OVERVIEWS, StagedOutputs, finalize_cog, open_density_writer, overview_factors, table_names, write_frame, write_table,
)
from lucr.io import LandCover, ZoneLayer, check_nesting, open_landcover, read_zone_layer
from lucr.analysis.panel import equally_spaced
from lucr.sweep import build_sweep
from lucr.zonal import ZoneClassArea, ZonePayload, aggregate_to_parent, exact_zone_class_area, numeric_columns, unit_table

log = logging.getLogger("lucr")
#: GDAL block cache (MB), unless the user sets GDAL_CACHEMAX: GDAL's default of 5 % of RAM
#: let 1e8 cells peak at 2 GB RSS; 160 MB keeps the run under 1 GiB (0.90 GiB) at the same speed
#: (64 MB costs 70 % more time). GDAL reads it once, so it is set before any raster I/O.
GDAL_CACHE_MB = 160
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


@dataclass
class YearResult:
    """The zonal tables (by level) and the summary of one land-cover date."""

    tables: dict[str, Any]
    summary: dict[str, Any]


@dataclass
class RunResult:
    """What a run produced: published paths, and per land-cover year its tables and summary."""

    out_dir: Path
    outputs: list[Path]
    by_year: dict[int | None, YearResult] = field(default_factory=dict)
    analyses: dict[str, Any] = field(default_factory=dict)  # zone label -> analysis.AnalysisResult

    @property
    def tables(self) -> dict[str, Any]:
        """Zonal tables of the first (usually the only) year, by level."""
        return next(iter(self.by_year.values())).tables

    @property
    def summary(self) -> dict[str, Any]:
        """Summary of the first (usually the only) year."""
        return next(iter(self.by_year.values())).summary


@contextmanager
def scheduler(address: str | None, threads: int | None) -> Iterator[Any]:
    """Local threads by default; a ``dask.distributed.Client`` when given an address."""
    if not address:
        with dask.config.set(scheduler=dask.threaded.get, num_workers=threads):  # a callable: no probe for distributed
            yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout="15s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise LucrError(f"cannot connect to the dask scheduler at {address} ({exc})", fix="check the address (tcp://host:port) and that the scheduler is running") from None
    with client:
        yield client


def read_zones(cfg: RunConfig, lc: LandCover) -> list[ZoneLayer]:
    """Read every configured level of admin units, coarsest first, and check their nesting."""
    layers = [
        read_zone_layer(z.path, level=z.level, id_col=z.id, name_col=z.name, parent_col=z.parent, layer=z.layer, grid=lc.grid)
        for z in cfg.zones
    ]
    check_nesting(layers)
    return layers


def unknown_codes(code_count: np.ndarray, class_of_code: np.ndarray, n_classes: int, offset: int) -> dict[int, int]:
    """``{code: cell count}`` of codes that are neither in the table nor nodata."""
    idx = np.flatnonzero((class_of_code == n_classes) & (code_count > 0))
    return {int(i) + offset: int(code_count[i]) for i in idx}


def _warn_nodata_is_class(lc: LandCover, table: CoefficientTable, code_count: np.ndarray, offset: int) -> None:
    """The raster's nodata value is a class of the table: those cells count as no data."""
    cls = next((c for c in table.classes if c.code == lc.nodata), None)
    if cls is not None:
        log.warning(
            "%s: the raster's nodata value %s is class '%s' of table '%s': its %s cells count as no data "
            "(fix: `rio edit-info --nodata <other value>` if they are real %s)",
            lc.path, lc.nodata, cls.name, table.legend, f"{int(code_count[lc.nodata - offset]):,}", cls.name,
        )


def _check_unknown(found: dict[int, int], policy: str, table: CoefficientTable, raster: Path) -> None:
    if not found:
        return
    listing = ", ".join(f"{code} ({n:,} cells)" for code, n in sorted(found.items()))
    if policy == "error":
        raise UnknownClassError(
            f"land-cover codes missing from the coefficient table '{table.legend}': {listing}", path=raster,
            fix="add them to the coefficient table, set the raster's nodata, or set 'unknown_classes: nodata' to treat them as no data",
        )
    log.warning("treated as no data (unknown_classes: nodata): codes %s", listing)


def run(
    cfg: RunConfig,
    *,
    out_dir: Path | None = None,
    overwrite: bool = False,
    scheduler_address: str | None = None,
    chunks: int | None = None,
    engine: str | None = None,
    progress: Callable[[], Any] | None = None,
) -> RunResult:
    """Run the spine: one pass over the land cover -> ``carbon_balance.tif`` + zonal tables.

    Parameters override the config: ``out_dir`` (output.dir), ``scheduler_address``
    (cluster.address), ``chunks``, ``engine``. ``progress`` is a factory of a context
    manager shown while the pass runs (e.g. a rich progress bar as a dask callback).
    """
    out_dir = Path(out_dir or cfg.output.dir)
    chunks = chunks or cfg.chunks
    engine = engine or cfg.engine
    table = load_table(cfg.legend, cfg.coefficients)
    for c in table.not_from_papers():
        log.info("coefficient of class %s (%s) = %g t C/ha/yr is %s (see %s)", c.code, c.name, c.coef, c.status.replace("_", " "), table.path)
    series = [open_landcover(p, chunks=chunks, band=cfg.landcover.band, year=y) for y, p in cfg.landcover.series().items()]
    _check_same_grid(series)
    layers = read_zones(cfg, series[0])
    suffix = (lambda lc: f"_{lc.year}") if len(series) > 1 else (lambda lc: "")
    names = [
        n for lc in series for n in (
            ([f"carbon_balance{suffix(lc)}.tif"] if cfg.output.map else [])
            + [n for z in cfg.zones for n in table_names(z.output_stem() + suffix(lc), cfg.output.tables)]
            + [f"run_summary{suffix(lc)}.json"]
        )
    ]
    analysed = analysed_levels(cfg, table, [lc.year for lc in series])
    names += [n for z, sections in analysed for n in analysis.output_names(z.plural, sections, cfg.output.tables)]
    if len(series) > 1:
        names += [n for z in cfg.zones for n in table_names(z.output_stem() + "_by_year", cfg.output.tables)]
    by_year = {}
    with StagedOutputs(out_dir, names, overwrite) as staged, scheduler(scheduler_address or cfg.cluster.address, cfg.cluster.threads) as client:
        for lc in series:
            t0 = time.perf_counter()
            if len(series) > 1:
                log.info("land cover %s (%s)", lc.year, lc.path.name)
            result = _one_date(cfg, lc, table, layers, engine, staged, suffix(lc), client, progress)
            result.summary["seconds"] = round(time.perf_counter() - t0, 3)
            staged.path(f"run_summary{suffix(lc)}.json").write_text(json.dumps(result.summary, indent=2, ensure_ascii=False), encoding="utf-8")
            by_year[lc.year] = result
        analyses = _time_series_outputs(cfg, by_year, layers, analysed, staged, multi_year=len(series) > 1)
        outputs = staged.commit()
    return RunResult(out_dir=out_dir, outputs=outputs, by_year=by_year, analyses=analyses)


def analysed_levels(cfg: RunConfig, table: CoefficientTable, years: list[int | None]) -> list[tuple[ZoneLevelConfig, list[str]]]:
    """The zone levels the analysis covers and its sections there; checks variable names before the pass."""
    settings = cfg.analysis
    if settings is None:
        return []
    columns = numeric_columns(table.codes)
    unknown = [v for v in settings.columns() if v not in columns]
    if unknown:
        hints = [f"'{v}'" + (f" (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(v, columns, n=1)) else "") for v in unknown]
        raise ConfigError(f"analysis names unknown zonal column(s): {', '.join(hints)}", path=cfg.source, fix=f"use columns of the zonal tables: {', '.join(columns)}")
    run_years = [y for y in years if y is not None]
    if settings.years is not None and not set(settings.years) <= set(run_years):
        raise ConfigError(f"analysis.years {sorted(set(settings.years) - set(run_years))} are not land-cover years ({run_years})", path=cfg.source, fix="list years of landcover.years under analysis.years")
    analysed_years = sorted(settings.years or run_years)
    n_years = len(settings.years or years)
    if settings.forecast is not None and n_years >= analysis.MIN_YEARS["forecast"]:
        if not equally_spaced(analysed_years):
            raise ConfigError(f"forecasts need equally spaced years; the run has {analysed_years}", path=cfg.source, fix="list evenly spaced years under analysis.years, or remove analysis.forecast")
        if settings.forecast.until is not None and settings.forecast.until <= analysed_years[-1]:
            raise ConfigError(f"analysis.forecast.until ({settings.forecast.until}) is not after the last year ({analysed_years[-1]})", path=cfg.source, fix="give a later year, or 'horizon' in steps")
    levels = settings.levels or [z.level for z in cfg.zones]
    return [(z, analysis.plan(settings, n_years, has_polygons=True)) for z in cfg.zones if z.level in levels]


def _time_series_outputs(cfg: RunConfig, by_year: dict, layers: list[ZoneLayer], analysed, staged: StagedOutputs, multi_year: bool) -> dict[str, Any]:
    """The unit-year tables of a multi-year run, and the analysis of each analysed level."""
    results = {}
    dated = all(y is not None for y in by_year)
    for zcfg, layer in zip(cfg.zones, layers):
        long = pd.concat(
            [pd.DataFrame(r.tables[layer.level].drop(columns="geometry")).assign(year=y) for y, r in by_year.items()], ignore_index=True,
        )
        long = long[["unit_id", "name", "parent_id", "level", "year"] + [c for c in long.columns if c not in ("unit_id", "name", "parent_id", "level", "year")]]
        if multi_year:
            write_frame(long, zcfg.output_stem() + "_by_year", cfg.output.tables, staged.path)
        sections = next((s for z, s in analysed if z.level == zcfg.level), None)
        if sections is None:
            continue
        log.info("analysis of %s: %s", zcfg.plural, ", ".join(sections) or "nothing to run")
        level_table = analysis.UnitTable(
            frame=long, id_col="unit_id", year_col="year" if dated else None, label=zcfg.plural,
            polygons=layer.frame[["unit_id", "name", "geometry"]], source=zcfg.output_stem(), polygons_source=zcfg.path,
        )
        results[zcfg.plural] = analysis.analyse(level_table, cfg.analysis, strict=False)
        analysis.write(results[zcfg.plural], staged.path, cfg.output.tables)
    return results


def _check_same_grid(series: list[LandCover]) -> None:
    first = series[0]
    for lc in series[1:]:
        if (lc.grid.shape, lc.grid.transform, lc.grid.crs) != (first.grid.shape, first.grid.transform, first.grid.crs):
            raise InputFileError(
                f"its grid ({lc.grid.width} x {lc.grid.height}, {lc.grid.crs.to_string()}) differs from that of {first.path.name}",
                path=lc.path, fix="warp all years of land cover onto one grid (gdalwarp -te ... -tr ... -t_srs ...)",
            )


def _one_date(cfg: RunConfig, lc: LandCover, table: CoefficientTable, layers: list[ZoneLayer], engine: str, staged: StagedOutputs, suffix: str, client, progress) -> YearResult:
    """The single pass over one land-cover raster, and the outputs it yields."""
    finest = layers[-1] if layers else None
    class_of_code, coef_lut, offset = table.dense_luts(lc.codes.dtype, extra_nodata=() if lc.nodata is None else (lc.nodata,))
    scale_bits = fixed_point_scale_bits(lc.grid, row_cell_area_ha(lc.grid))
    zonal_fast = finest is not None and engine == "fast"
    reduction = ZoneClassArea(lc.grid, ZonePayload.from_layer(finest) if zonal_fast else None, class_of_code, offset, table.n_classes, scale_bits)

    maps, writers = [], []
    if cfg.output.map:
        tmp_full = staged.path(f"carbon_balance{suffix}.full.tif")
        tmp_overviews = {f: staged.path(f"carbon_balance{suffix}.ovr{f}.tif") for f in STREAMED_OVERVIEWS if f in overview_factors(lc.grid)}
        tags = {"lucr_legend": table.legend, "lucr_sign": "sources positive, sinks negative", "lucr_source_raster": str(lc.path), "lucr_year": str(lc.year or "")}
        density = balance.flux_density(lc.codes.data, coef_lut, offset)
        streams = [(lc.grid, tmp_full, density)] + [(lc.grid.decimated(f), p, density[:, ::f, ::f]) for f, p in tmp_overviews.items()]
        for grid, path, array in streams:
            writer = open_density_writer(path, grid, balance.BANDS, balance.UNIT, cfg.output.compress, tags)
            if client is not None:
                writer.close()  # workers reopen the file in update mode
            writers.append(writer)
            maps.append((array, writer))
    lock = threading.Lock() if client is None else _distributed_lock()
    store, crosstab = build_sweep(lc.codes.data, lc.grid, [reduction], maps=maps, map_lock=lock)
    todo = [x for x in (store, crosstab) if x is not None]
    try:
        with progress() if progress else nullcontext():
            # scheduler named explicitly: dask would otherwise import distributed to look for a client
            computed = dask.compute(*todo) if client is None else client.gather(client.compute(todo))
    except RasterioIOError as exc:
        raise InputFileError(
            f"reading failed during the pass ({str(exc).splitlines()[0]})", path=lc.path,
            fix="check that the file is complete and, for a VRT, that every source file it names exists",
        ) from None
    finally:
        for writer in writers:
            writer.close()
    area_fx, code_count = computed[-1]
    _check_unknown(unknown_codes(code_count, class_of_code, table.n_classes, offset), cfg.unknown_classes, table, lc.path)
    _warn_nodata_is_class(lc, table, code_count, offset)
    if cfg.output.map:
        finalize_cog(tmp_full, tmp_overviews, staged.path(f"carbon_balance{suffix}.tif"), lc.grid, cfg.output.compress)

    unit_rows = {}
    if finest is not None:
        if engine == "exact":
            unit_rows[finest.level] = exact_zone_class_area(lc.path, cfg.landcover.band, finest, lc.grid, class_of_code, offset, table.n_classes, scale_bits, lc.nodata)[1:]
        else:
            unit_rows[finest.level] = area_fx[1:]
        for coarse, fine in zip(reversed(layers[:-1]), reversed(layers[1:])):
            unit_rows[coarse.level] = aggregate_to_parent(unit_rows[fine.level], fine.frame["parent_id"].to_numpy(), coarse.frame["unit_id"].to_numpy())
    tables = {}
    for zcfg, layer in zip(cfg.zones, layers):
        frame = unit_table(layer, from_fixed_point(unit_rows[layer.level], scale_bits), table.coefs, table.codes, lc.grid)
        write_table(frame, zcfg.output_stem() + suffix, cfg.output.tables, staged)
        tables[layer.level] = frame
    summary = _summary(lc, table, engine, scale_bits, area_fx.sum(axis=0), unit_rows.get(finest.level) if finest is not None else None, tables, code_count, offset)
    return YearResult(tables=tables, summary=summary)


def _distributed_lock():
    from distributed import Lock

    return Lock(f"lucr-map-{time.time_ns()}")


def _flux(area_ha: np.ndarray, coefs: np.ndarray) -> dict[str, float]:
    source = float(area_ha @ np.where(coefs > 0, coefs, 0.0))
    sink = float(area_ha @ np.where(coefs < 0, coefs, 0.0))
    return {"source_tc": source, "sink_tc": sink, "net_tc": source + sink}


def _summary(lc, table, engine, scale_bits, grid_total_fx, finest_rows_fx, tables, code_count, offset) -> dict:
    k = table.n_classes
    grid_ha = from_fixed_point(grid_total_fx, scale_bits)
    summary = {
        "landcover": str(lc.path), "year": lc.year, "legend": table.legend, "engine": engine,
        "chunks": [list(c) for c in (lc.codes.data.chunks[0][:1], lc.codes.data.chunks[1][:1])],
        "grid": {"height": lc.grid.height, "width": lc.grid.width, "crs": lc.grid.crs.to_string()},
        "valid_area_ha": float(grid_ha[:k].sum()),
        "nodata_area_ha": float(grid_ha[k + 1]),
        "unknown_area_ha": float(grid_ha[k]),
        "class_area_ha": {str(code): float(a) for code, a in zip(table.codes, grid_ha[:k])},
        **_flux(grid_ha[:k], table.coefs),
        "cells_by_code": {str(i + offset): int(n) for i, n in enumerate(code_count) if n},
        "coefficients_not_from_papers": [
            {"code": c.code, "name": c.name, "coef": c.coef, "status": c.status, "ref": table.references.get(c.ref, c.ref)} for c in table.not_from_papers()
        ],
        "levels": {},
    }
    if finest_rows_fx is not None:
        outside = from_fixed_point(grid_total_fx - finest_rows_fx.sum(axis=0), scale_bits)[:k]  # exact in fixed point
        summary["outside_units"] = {"valid_area_ha": float(outside.sum()), **_flux(outside, table.coefs)}
    for level, frame in tables.items():
        summary["levels"][level] = {
            "units": len(frame),
            "units_without_data": frame.loc[frame["valid_fraction"] == 0, "unit_id"].tolist(),
            "valid_area_ha": float((frame["valid_fraction"] * frame["area_ha"]).sum()),
            "source_tc": float(frame["source_tc"].sum()), "sink_tc": float(frame["sink_tc"].sum()), "net_tc": float(frame["net_tc"].sum()),
        }
    return summary

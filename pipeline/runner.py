"""One lucr run: config -> inputs -> one pass over every date -> map products + zonal tables, staged atomically."""

from __future__ import annotations

import difflib
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import dask
import dask.array as da
import dask.threaded
import numpy as np
import pandas as pd
from rasterio.errors import RasterioIOError

from lucr.area import fixed_point_scale_bits, from_fixed_point, row_cell_area_ha
from lucr.chunk import ChunkLayers
from lucr.coefficient_notes import legend_table, say_sources, unverified_share
from lucr.coefficients import CoefficientTable, load_table
from lucr.change.stage import run_stage as run_change_stage
from lucr.change.stage import table_kinds
from lucr.change.scenarios import check as check_scenarios
from lucr.change.stocks import pools_per_class, read_pools
from lucr.config import RunConfig, ZoneLevelConfig, _plural
from lucr.errors import ConfigError, InputFileError, LucrError, OutputError, UnknownClassError
from lucr.export import (
    STREAMED_OVERVIEWS, StagedOutputs, TilePartsWriter, failed_block_read, finalize_cog, map_profile, open_map_writer, output_write_error,
    overview_factors, table_names,
    write_frame,
)
from lucr import nesting
from lucr.provenance import InputHashes, run_record, table_digest
from lucr.products.carbon_balance import style_entries
from lucr.qgis_style import raster_qml
from lucr.report_html import REPORT
from lucr.report_html import write as write_report
from lucr.units import express_in, factor, renamed, summary_in
from lucr.xlsx import WORKBOOK, write_workbook
from lucr.grid import Grid
from lucr.inventory.allocation import allocated_name, finest_to_level, level_sums
from lucr.inventory.builtup import override_sums as builtup_override_sums
from lucr.inventory.allocation import densities as allocation_densities
from lucr.inventory.allocation import product as allocation_product
from lucr.inventory.outputs import output_names as inventory_output_names
from lucr.inventory.outputs import statistics_only
from lucr.inventory.outputs import write as write_inventory
from lucr.inventory.stage import output_stems as inventory_stems
from lucr.inventory.stage import run_statistics
from lucr.io import LandCover, ValueRaster, ZoneLayer, check_nesting, check_same_grid, no_data_error, open_landcover, open_value_raster, open_weight_raster, read_zone_layer
from lucr.products.base import MapProduct, RunContext
from lucr.products.registry import declared_maps, declared_reductions
from lucr.products.raster_sums import centre_areas_name, flux_name, weights_name
from lucr.products.zone_class_area import reduction_name
from lucr.sweep import PassSources, Sweep
from lucr.sweep import compute as compute_pass
from lucr.malloc import return_freed_memory, reuse_freed_memory as workers_reuse_freed_memory
from lucr.worker_profiler import profiler_paused
from lucr.zonal import ZonePayload, aggregate_to_parent, geometries_parked, flux_totals, numeric_columns, polygon_wkb, unit_table
from lucr.outputs_spec import filename

#: The run's provenance record (lucr.provenance).
RUN_RECORD = filename("run_record")  # run.json (lucr.outputs_spec)

log = logging.getLogger("lucr")
#: GDAL block cache (MB), unless the user sets GDAL_CACHEMAX: GDAL's default of 5 % of RAM
#: let 1e8 cells peak at 2 GB RSS. Map tiles are written to part files closed at once, so the
#: cache only holds decoded input blocks, each read once: 48 MB was as fast as 160 MB and
#: 24 MB slower (1e8 cells, 300 units: 4.29 / 4.48 / 4.90 s, 613 / 655 / 584 MiB, 3 runs each).
#: GDAL reads it once, so it is set before any raster I/O.
GDAL_CACHE_MB = 48
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


@dataclass
class YearResult:
    """The zonal tables (by level) and the summary of one land-cover date."""

    tables: dict[str, Any]
    summary: dict[str, Any]
    rows_fx: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # level -> fixed-point cross-tab rows ("grid": the raster)


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out_dir : the output folder
    outputs : every published file
    by_year : per land-cover date (year, or None for one undated raster) its zonal tables
        (GeoDataFrames by level) and its summary
    analyses : per zone label (``provinces``) its :class:`lucr.analysis.AnalysisResult`
    maps : published map products by name (``carbon_balance``, ``carbon_balance_2019``) -> path
    reductions : the single pass's reduction totals by name (e.g. ``zone-class-area``)
    change : land-use change tables by stem (``transitions_provinces``), with a ``change`` section
    inventory : the statistics route's tables and summary (:class:`lucr.inventory.stage.InventoryResult`), with a ``statistics`` section
    """

    out_dir: Path
    outputs: list[Path]
    by_year: dict[int | None, YearResult] = field(default_factory=dict)
    analyses: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)
    reductions: dict[str, Any] = field(default_factory=dict)
    change: Any = None  # lucr.change.stage.ChangeResult of a run with a `change` section
    inventory: Any = None  # lucr.inventory.stage.InventoryResult of a run with a `statistics` section
    risk: dict[str, Any] = field(default_factory=dict)  # level -> lucr.analysis.risk.RiskResult

    @property
    def tables(self) -> dict[str, Any]:
        """Zonal tables of the first (usually the only) year, by level."""
        return next(iter(self.by_year.values())).tables

    @property
    def summary(self) -> dict[str, Any]:
        """Summary of the first (usually the only) year."""
        return next(iter(self.by_year.values())).summary


@contextmanager
def scheduler(address: str | None, threads: int | None, reuse_freed_memory: bool = True, pause_profiler: bool = True) -> Iterator[Any]:
    """Local threads by default; a ``dask.distributed.Client`` when given an address (its
    workers tuned for the run by :func:`lucr.malloc.reuse_freed_memory` and
    :func:`lucr.worker_profiler.profiler_paused`)."""
    if not address:
        with dask.config.set(scheduler=dask.threaded.get, num_workers=threads):  # a callable: no probe for distributed
            yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout="15s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise LucrError(f"cannot connect to the dask scheduler at {address} ({exc})", fix="check the address (tcp://host:port) and that the scheduler is running") from None
    with client, workers_reuse_freed_memory(client, reuse_freed_memory), profiler_paused(client, pause_profiler):
        yield client


def _input_paths(cfg: RunConfig, series: list[LandCover], table: CoefficientTable) -> list[Path]:
    """Every file the run reads: config, land cover, zones, tables, value rasters."""
    paths = [lc.path for lc in series] + [Path(z.path) for z in cfg.zones]
    paths += [Path(p) for p in (cfg.source, getattr(table, "path", None)) if p]
    if cfg.flux_raster is not None:
        paths.append(Path(cfg.flux_raster.path))
    if cfg.change is not None:
        paths += [Path(p) for p in (cfg.change.pools,) if p]
        stock = cfg.change.stock_raster
        paths += [Path(p) for p in (stock.values() if isinstance(stock, dict) else [stock]) if p]
    return paths


def _style_name(product) -> str:
    """QGIS loads ``<name>.qml`` beside a raster as its style."""
    return product.filename.rsplit(".", 1)[0] + ".qml"


def _in_output_units(cfg: RunConfig) -> RunConfig:
    """The config with the analysis's column names in the output unit (``net_tc`` -> ``net_tco2``)."""
    units, a = cfg.output.units, cfg.analysis
    if units == "t C" or a is None:
        return cfg
    names = lambda cols: [renamed(c, units) for c in cols]  # noqa: E731
    rel = a.relational
    if rel is not None:
        rel = rel.model_copy(update={"reference": renamed(rel.reference, units), "compare": rel.compare if rel.compare == "classes" else names(rel.compare)})
    return cfg.model_copy(update={"analysis": a.model_copy(update={"variables": names(a.variables), "gravity": names(a.gravity), "relational": rel})})


def _tables_used(table: CoefficientTable, pools, base: Path) -> list[dict]:
    """The parameter tables of the run with a digest of their values (run.json)."""
    used = [{"kind": "flux", "id": table.legend, "path": os.path.relpath(table.path, base) if table.path else None, "values_sha256": table.digest(), "unit": "t C / ha / yr"}]
    if pools is not None:
        rows = [(r.key, sorted(r.values.items()), r.status, r.ref) for r in pools.rows]
        used.append({"kind": "pools", "id": pools.id, "path": os.path.relpath(pools.path, base) if pools.path else None, "values_sha256": table_digest(rows), "unit": "t C / ha"})
    return used


def refuse_replacing_inputs(out_dir: Path, names: list[str], inputs: list[Path]) -> None:
    """An output never replaces a file the run reads, whatever ``--overwrite`` says."""
    for name in names:
        target = out_dir / name
        for source in inputs:
            same = target.exists() and source.exists() and os.path.samefile(target, source)
            if same or target.resolve() == source.resolve():
                raise OutputError(
                    f"the output '{name}' would replace the input file {source}", path=out_dir,
                    fix="write the outputs to another folder (--out DIR), or move or rename the input",
                )


def read_zones(cfg: RunConfig, lc: LandCover) -> list[ZoneLayer]:
    """Read every configured level of admin units, coarsest first, and check their nesting."""
    layers = [
        read_zone_layer(z.path, level=z.level, id_col=z.id, name_col=z.name, parent_col=z.parent, layer=z.layer, grid=lc.grid, invalid=z.invalid, keep=z.keep)
        for z in cfg.zones
    ]
    check_nesting(layers)
    nesting.check(layers, [(z.nesting, z.nesting_tolerance) for z in cfg.zones[1:]])
    return_freed_memory()  # the read's and the overlays' temporaries: the pass starts from the units alone
    return layers


def _warn_nodata_is_class(lc: LandCover, table: CoefficientTable, code_count: np.ndarray, offset: int) -> None:
    """The raster's nodata value is a class of the table: those cells count as no data."""
    cls = next((c for c in table.classes if c.code == lc.nodata), None)
    if cls is not None:
        log.warning(
            "%s: the raster's nodata value %s is class '%s' of table '%s': its %s cells count as no data "
            "(fix: `rio edit-info --nodata <other value>` if they are real %s)",
            lc.path, lc.nodata, cls.name, table.legend, f"{int(code_count[lc.nodata - offset]):,}", cls.name,
        )


#: Units covering fewer cells than this get a warning with the fast engine. Measured on the
#: 0.05-degree sample (fast vs exact engine, area with data): cities of over 1,000 cells are off
#: by up to 0.78 %, of 100-1,000 cells by up to 6.5 %, of fewer than 100 by up to 15 %.
FAST_ENGINE_MIN_CELLS = 1000


def _warn_small_units(frame: pd.DataFrame, row_area_ha: np.ndarray, level: str) -> None:
    """Fast engine: name the units too small for the cell-centre rule (their areas can be off by percents)."""
    cells = (frame["valid_fraction"] * frame["area_ha"]).to_numpy() / float(np.median(row_area_ha))
    small = frame.loc[(cells > 0) & (cells < FAST_ENGINE_MIN_CELLS), "unit_id"].tolist()
    if small:
        log.warning(
            "%d %s unit(s) cover fewer than %d cells (%s%s): the fast engine's cell-centre areas can be "
            "off by percents there (fix: engine: exact, edge-exact in the same pass)",
            len(small), level, FAST_ENGINE_MIN_CELLS, ", ".join(map(str, small[:5])), ", ..." if len(small) > 5 else "",
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
    status: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the spine: one pass over every date of land cover -> map products + zonal tables.

    Parameters override the config: ``out_dir`` (output.dir), ``scheduler_address``
    (cluster.address), ``chunks``, ``engine``. ``progress`` is a factory of a context
    manager shown while the pass runs (e.g. a rich progress bar as a dask callback);
    ``status`` is told each later step (zonal tables, analysis, provenance) as it starts.
    """
    started = time.time()
    cfg = _in_output_units(cfg)
    out_dir = Path(out_dir or cfg.output.dir).absolute()
    if cfg.landcover is None:  # a statistics-only run: tables from the statistics alone
        return statistics_only(cfg, out_dir, overwrite, started)
    chunks = chunks or cfg.chunks
    engine = engine or cfg.engine
    table = load_table(cfg.legend, cfg.coefficients)
    say_sources(table)
    series = [open_landcover(p, chunks=chunks, band=cfg.landcover.band, year=y) for y, p in cfg.landcover.series().items()]
    check_same_grid(series)
    layers = read_zones(cfg, series[0])
    grid = series[0].grid
    ctx = RunContext(
        config=cfg, table=table, dates=tuple(series), layers=tuple(layers), grid=grid, engine=engine,
        columns={lc.year: table.columns(lc.codes.dtype, extra_nodata=(lc.nodata,)) for lc in series},
        scale_bits=fixed_point_scale_bits(grid, row_cell_area_ha(grid)),
    )
    ctx = replace(ctx, rasters=_value_rasters(cfg, series))
    pool_table = None
    if cfg.change is not None and cfg.change.pools is not None:
        pool_table = read_pools(cfg.change.pools)
        ctx = replace(ctx, pools=pools_per_class(pool_table, table.classes))  # NaN for classes without pools, checked after the pass
    maps, reductions = declared_maps(ctx), declared_reductions(ctx)
    styled = [p for p in maps if p.name.startswith("carbon_balance")]  # a QGIS style beside each carbon-balance map
    names = [p.filename for p in maps] + [_style_name(p) for p in styled] + [
        n for lc in series for n in (
            [n for z in cfg.zones for n in table_names(z.output_stem() + ctx.suffix(lc.year), cfg.output.tables)]
            + [f"run_summary{ctx.suffix(lc.year)}.json"]
        )
    ]
    analysed = analysed_levels(cfg, table, [lc.year for lc in series])
    if analysed:
        from lucr import analysis  # imported when a run analyses (esda, scipy: ~0.1 s)

        names += [n for z, sections in analysed for n in analysis.output_names(z.plural, sections, cfg.output.tables)]
    if ctx.multi_date:
        names += [n for z in cfg.zones for n in table_names(z.output_stem() + "_by_year", cfg.output.tables)]
    names += table_names("legend", cfg.output.tables)
    if "xlsx" in cfg.output.tables:
        names.append(WORKBOOK)
    if cfg.change is not None:
        labels = ["grid", *(z.plural for z in cfg.zones)]
        check_scenarios(cfg.change.scenarios, [lc.year for lc in series], layers, table)
        kinds = table_kinds(ctx.multi_date, pool_table is not None, bool(cfg.change.scenarios))
        names += [n for kind in kinds for label in labels for n in table_names(f"{kind}_{label}", cfg.output.tables)]
    if cfg.risk is not None:
        from lucr.analysis.risk import output_stems as risk_stems  # here, not at the top: lucr.analysis loads scipy (~0.15 s)

        names += [n for z in cfg.zones for stem in risk_stems(z.plural) for n in table_names(stem, cfg.output.tables)]
    if cfg.statistics is not None:
        names += inventory_output_names(cfg)
        if _allocates(cfg):
            names += [allocated_name(ctx.suffix(lc.year)) + ".tif" for lc in series]
    names.append(RUN_RECORD)
    if cfg.output.report and cfg.zones:
        names.append(REPORT)
    by_year = {}
    inputs = _input_paths(cfg, series, table)
    refuse_replacing_inputs(out_dir, names, inputs)
    hashes = InputHashes(inputs, cfg.output.input_hashes)  # in the background, during the pass (see lucr.provenance)
    with hashes, StagedOutputs(out_dir, names, overwrite) as staged, scheduler(
        scheduler_address or cfg.cluster.address, cfg.cluster.threads, reuse_freed_memory=cfg.cluster.reuse_freed_memory, pause_profiler=cfg.cluster.pause_worker_profiler,
    ) as client:
        t0 = time.perf_counter()
        builtup = _builtup_from_statistics(cfg)
        deferred = [p for p in maps if builtup and p.name.startswith(("carbon_balance", "risk_grade"))]  # written in the allocation's pass
        totals, timings = _single_pass(ctx, [p for p in maps if p not in deferred], reductions, staged, client, progress)
        pass_seconds = round(time.perf_counter() - t0, 3)
        for p in styled:
            entries = style_entries(table, cfg.output.units)
            staged.path(_style_name(p)).write_text(raster_qml(3, entries, p.units, exact=cfg.flux_raster is None), encoding="utf-8")
        say = status or (lambda _: None)
        inventory, overrides = None, {}
        if builtup:  # the statistics first: their built-up emissions enter the zonal tables
            say("statistics route: built-up emissions in place of the coefficient")
            # the tables twice, for a reason: the statistics need the class areas (fixation from land cover), and the
            # tables then need the statistics; both are table arithmetic on the pass's cross-tab (no raster read)
            pre = {lc.year: _date_outputs(ctx, lc, *totals[reduction_name(lc.year)], staged, write=False) for lc in series}
            inventory = run_statistics(cfg, layers=layers, zonal_by_year={y: r.tables for y, r in pre.items()}, table=table)
            overrides = {lc.year: _builtup_override(ctx, inventory, layers, totals, lc) for lc in series}
        for lc in series:
            say(f"zonal tables{f' of {lc.year}' if lc.year else ''}")
            t1 = time.perf_counter()
            area_fx, code_count = totals[reduction_name(lc.year)]
            override = overrides.get(lc.year, totals.get(flux_name(lc.year)))
            result = _date_outputs(ctx, lc, area_fx, code_count, staged, override, override_kind="builtup" if builtup else "flux_raster")
            whole = result.summary["whole_raster"]
            if whole["valid_area_ha"] == 0 and whole["unknown_area_ha"] == 0:
                raise no_data_error(lc.path, sorted({*table.nodata, *([lc.nodata] if lc.nodata is not None else [])}))
            result.summary["pass_seconds"] = pass_seconds  # one pass for every date of the run
            result.summary["pass_timings_s"] = timings
            result.summary["seconds"] = round(pass_seconds + time.perf_counter() - t1, 3)
            result.summary["reductions"] = {r.name: r.summary(totals[r.name]) for r in reductions if hasattr(r, "summary")}
            by_year[lc.year] = result
        change = None
        if cfg.change is not None:
            rows_fx = {y: r.rows_fx for y, r in by_year.items()}
            say("land-use change tables")
            change = run_change_stage(ctx, totals, rows_fx, _plural, pool_table)
            change = replace(change, tables={k: express_in(v, cfg.output.units) for k, v in change.tables.items()}, summary=summary_in(change.summary, cfg.output.units))
            for stem, frame in change.tables.items():
                write_frame(frame, stem, cfg.output.tables, staged.path, csv_bom=cfg.output.csv_bom, lang=cfg.output.lang)
        for lc in series:
            summary = by_year[lc.year].summary
            if change is not None:
                summary["change"] = change.summary
            staged.path(f"run_summary{ctx.suffix(lc.year)}.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        analyses = _time_series_outputs(cfg, by_year, layers, analysed, staged, multi_year=ctx.multi_date, say=say)
        risks = {}
        if cfg.risk is not None:
            from lucr.analysis.risk import assess_levels as assess_risk

            risks = assess_risk(cfg, by_year, analyses, table, staged.path, say, change)
        if cfg.statistics is not None:
            say("statistics route: accounting, carbon-oxygen balance")
            if inventory is None:
                inventory = run_statistics(cfg, layers=layers, zonal_by_year={y: r.tables for y, r in by_year.items()}, table=table)
            statistics_risk = write_inventory(inventory, cfg, staged.path)
            if statistics_risk is not None:
                risks["statistics"] = statistics_risk
            if _allocates(cfg):
                say("statistics route: totals onto their cells (second pass)")
                _allocate(ctx, inventory, by_year, layers, staged, client, totals, deferred)
        ranges = None
        if cfg.risk is not None and cfg.risk.uncertainty is not None and cfg.zones:
            from lucr.analysis.risk import coefficient_ranges

            ranges = coefficient_ranges(table, cfg.risk.uncertainty, factor(cfg.output.units))
        legend = legend_table(table, cfg.output.units, ranges)
        write_frame(legend, "legend", cfg.output.tables, staged.path, csv_bom=cfg.output.csv_bom, lang=cfg.output.lang)
        if "xlsx" in cfg.output.tables:
            sheets = {z.output_stem() + ctx.suffix(y): r.tables[z.level] for y, r in by_year.items() for z in cfg.zones}
            sheets |= (change.tables if change is not None else {}) | {"legend": legend}
            write_workbook(staged.path(WORKBOOK), sheets, classes=table, lang=cfg.output.lang)
        say("run.json: checksums of the inputs")
        config_dir = Path(cfg.source).parent if cfg.source else Path.cwd()
        record = run_record(
            config=cfg, config_dir=config_dir, inputs=hashes.result(config_dir), tables=_tables_used(table, pool_table, config_dir),
            started=started, outputs=sorted(n for n in names if staged.path(n).exists()),
        )
        if inventory is not None:
            record["statistics"] = inventory.summary
        staged.path(RUN_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        if REPORT in names:
            say("report.html: figures and tables")
            write_report(staged.staging, staged.path(REPORT), levels=[z.plural for z in cfg.zones], lang=cfg.output.lang)
        outputs = staged.commit()
    return RunResult(
        out_dir=out_dir, outputs=outputs, by_year=by_year, analyses=analyses,
        maps={p.name: out_dir / p.filename for p in maps}, reductions=totals, change=change, inventory=inventory, risk=risks,
    )


def _allocates(cfg: RunConfig) -> bool:
    return cfg.statistics is not None and cfg.statistics.allocate and cfg.statistics.level is not None and cfg.landcover is not None


def _builtup_from_statistics(cfg: RunConfig) -> bool:
    return _allocates(cfg) and cfg.statistics.builtup == "statistics"


def _builtup_override(ctx: RunContext, inventory, layers, totals: dict, lc: LandCover):
    """Per-(zone, class) built-up flux from the statistics (lucr.inventory.builtup) for one date."""
    s = ctx.config.statistics
    frame = pd.DataFrame(inventory.tables[inventory_stems(ctx.config)[0]]).set_index(["unit_id", "year"])
    years = sorted(frame.index.get_level_values("year").unique())
    year = min(years, key=lambda y: abs(y - lc.year)) if lc.year is not None else years[-1]
    level = next(lay for lay in layers if lay.level == s.level)
    k = ctx.table.n_classes
    area_ha = from_fixed_point(totals[reduction_name(lc.year)][0][1:, :k], ctx.scale_bits)
    sums = totals.get(weights_name(lc.year))
    emission = frame.xs(year, level="year")["builtup_emission_tc"] if "builtup_emission_tc" in frame else pd.Series(dtype=float)
    log.info("statistics.builtup: built-up emissions of %s (statistics year %s) in place of the built-up coefficient for the land cover of %s", s.level, year, lc.year)
    return builtup_override_sums(emission, level.frame["unit_id"].to_numpy(), finest_to_level(layers, s.level), area_ha,
                                 None if sums is None else sums.pos[1:, :k], ctx.table)


def _allocate(ctx: RunContext, inventory, by_year: dict, layers, staged: StagedOutputs, client, totals: dict, deferred: list[MapProduct] = ()) -> None:
    """Write each date's allocated density map. A SECOND PASS over the land cover, for a reason:
    the densities are totals over the areas (or covariate sums) the first pass measured (lucr.inventory.allocation).
    ``deferred``: the run's carbon-balance and risk maps when the statistics' built-up emissions replace
    the coefficient (statistics.builtup), written here with the allocated built-up densities."""
    level = ctx.config.statistics.level
    frame = pd.DataFrame(inventory.tables[inventory_stems(ctx.config)[0]]).set_index(["unit_id", "year"])
    years = sorted(frame.index.get_level_values("year").unique())
    finest_rows = finest_to_level(layers, level)
    maps, summary = [], {}
    for lc in ctx.dates:
        year = min(years, key=lambda y: abs(y - lc.year)) if lc.year is not None else years[-1]
        zonal = by_year[lc.year].tables[level]
        sums, centre = totals.get(weights_name(lc.year)), totals.get(centre_areas_name(lc.year))
        if sums is not None and (sums.neg < 0).any():  # a weight is a relative intensity: negative values are bad input, not zero
            log.warning("statistics.weights %s: negative weights on %.6g ha of the %s land cover; those cells get no allocation "
                        "(check the raster's nodata value)", ctx.config.statistics.weights.path.name, float(sums.area[sums.neg < 0].sum()), lc.year)
        weight_sums = level_sums(sums.pos[:, : ctx.table.n_classes], finest_rows, len(zonal)) if sums is not None else None
        area_sums = level_sums(centre.pos[:, : ctx.table.n_classes], finest_rows, len(zonal)) if centre is not None else None
        dens, weighted, unallocated = allocation_densities(frame.xs(year, level="year"), zonal, ctx.table, weight_sums, area_sums)
        allocated = allocation_product(ctx, lc.year, dens, finest_rows, ctx.suffix(lc.year), weighted)
        maps.append(allocated)
        if deferred:
            from lucr.inventory.builtup import with_builtup
            from lucr.products.risk_map import class_grades

            breaks = class_grades(ctx)[2] if ctx.config.risk is not None else None
            maps += [with_builtup(p, allocated.block, breaks) for p in deferred if p.name.endswith(ctx.suffix(lc.year)) and p.name.removesuffix(ctx.suffix(lc.year)) in ("carbon_balance", "risk_grade", "risk_grade_probability")]
        summary[str(lc.year)] = {"statistics_year": int(year), "weights": "area" if sums is None else str(ctx.config.statistics.weights.path.name), "unallocated_tc": unallocated}
    _single_pass(ctx, maps, [], staged, client, None)
    inventory.summary["allocation"] = summary


def analysed_levels(cfg: RunConfig, table: CoefficientTable, years: list[int | None]) -> list[tuple[ZoneLevelConfig, list[str]]]:
    """The zone levels the analysis covers and its sections there; checks variable names before the pass."""
    settings = cfg.analysis
    if settings is None:
        return []
    from lucr import analysis
    from lucr.analysis.panel import equally_spaced

    columns = [renamed(c, cfg.output.units) for c in numeric_columns(table.codes)]
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


def _time_series_outputs(cfg: RunConfig, by_year: dict, layers: list[ZoneLayer], analysed, staged: StagedOutputs, multi_year: bool, say=lambda _: None) -> dict[str, Any]:
    """The unit-year tables of a multi-year run, and the analysis of each analysed level."""
    results = {}
    dated = all(y is not None for y in by_year)
    for zcfg, layer in zip(cfg.zones, layers):
        long = pd.concat(
            [pd.DataFrame(r.tables[layer.level].drop(columns="geometry")).assign(year=y) for y, r in by_year.items()], ignore_index=True,
        )
        long = long[["unit_id", "name", "parent_id", "level", "year"] + [c for c in long.columns if c not in ("unit_id", "name", "parent_id", "level", "year")]]
        if multi_year:
            write_frame(long, zcfg.output_stem() + "_by_year", cfg.output.tables, staged.path, csv_bom=cfg.output.csv_bom, lang=cfg.output.lang)
        sections = next((s for z, s in analysed if z.level == zcfg.level), None)
        if sections is None:
            continue
        from lucr import analysis
        log.info("analysis of %s: %s", zcfg.plural, ", ".join(sections) or "nothing to run")
        say(f"analysis of {zcfg.plural}: {', '.join(sections) or 'nothing to run'}")
        level_table = analysis.UnitTable(
            frame=long, id_col="unit_id", year_col="year" if dated else None, label=zcfg.plural,
            polygons=layer.frame[["unit_id", "name", "geometry"]], source=zcfg.output_stem(), polygons_source=zcfg.path,
        )
        results[zcfg.plural] = analysis.analyse(level_table, cfg.analysis, strict=False)
        analysis.write(results[zcfg.plural], staged.path, cfg.output.tables)
    return results


def _value_rasters(cfg: RunConfig, series: list[LandCover]) -> dict[str, ValueRaster]:
    """The per-cell value rasters of the run (flux, stock), on the land-cover grid, chunked like it."""
    grid, chunks = series[0].grid, series[0].codes.data.chunks
    rasters = {}
    if cfg.flux_raster is not None:
        rasters["flux"] = open_value_raster(cfg.flux_raster.path, grid, chunks, band=cfg.flux_raster.band, what="flux raster", key="flux_raster.path")
    stock = cfg.change.stock_raster if cfg.change is not None else None
    if isinstance(stock, dict):
        years = [lc.year for lc in series]
        if set(stock) != set(years):
            raise ConfigError(f"change.stock_raster gives years {sorted(stock)}, the land cover {years}", path=cfg.source, fix="give one stock raster per land-cover year, or one raster for all years")
        for year, path in stock.items():
            rasters[f"stock_{year}"] = open_value_raster(path, grid, chunks, what="stock raster", key=f"change.stock_raster.{year}")
    elif stock is not None:
        rasters["stock"] = open_value_raster(stock, grid, chunks, what="stock raster", key="change.stock_raster")
    weights = cfg.statistics.weights if _allocates(cfg) else None
    if weights is not None:
        rasters["weights"] = open_weight_raster(weights.path, grid, chunks, band=weights.band, resampling=weights.resampling, what="allocation weight raster", key="statistics.weights.path")
    return rasters


def _single_pass(ctx: RunContext, maps: list[MapProduct], reductions: list, staged: StagedOutputs, client, progress) -> tuple[dict[str, Any], dict[str, float]]:
    """The one pass over every date: map products streamed to GeoTIFFs, reduction totals by name,
    and the wall seconds of its steps (``compute``: read, kernels, encode; ``maps``: COG assembly).

    The codes of each date are checked against the legend (unknown codes, nodata that is
    a class) before any map is assembled into a COG.
    """
    cfg, grid = ctx.config, ctx.grid
    # cell-centre zones, corrected at unit boundaries by coverage fractions with the exact engine
    finest = ctx.layers[-1].geometry_grid_crs.values if ctx.layers else None
    finest_wkb, zones = _zone_payload(ctx.layers[-1], grid) if ctx.layers else (None, None)
    first = ctx.dates[0].codes.data
    aligned = lambda a: a if a.chunks == first.chunks else a.rechunk(first.chunks)  # noqa: E731  (same blocks read once)
    sources = PassSources({lc.year: aligned(lc.codes.data) for lc in ctx.dates}, {k: aligned(r.values.data) for k, r in ctx.rasters.items()})
    sweep = Sweep(sources, ChunkLayers(grid, zones, ctx.scale_bits, exact=ctx.engine == "exact"))
    stores, writers, cogs, fused_writes = [], [], [], []
    targets: dict[str, Any] = {}
    for product in maps:
        array = sweep.map(product)
        full = staged.path(f"{product.name}.full.tif")
        overviews = {f: staged.path(f"{product.name}.ovr{f}.tif") for f in STREAMED_OVERVIEWS if f in overview_factors(grid)}
        levels = [(1, grid, full, array)] + [(f, grid.decimated(f), p, array[:, ::f, ::f]) for f, p in overviews.items()]
        cogs.append((product, full, overviews))
        # levels whose blocks start on tiles: the task that computes a block writes its tiles to a file
        # of its own (no lock, no transfer of the block on a cluster; locally two chunk bundles in flight
        # at most, and GDAL's cache holds no dirty blocks); the empty files keep each level's tags and layout
        parts = []
        for f, g, path, arr in levels:
            if TilePartsWriter.aligned(arr.chunks):
                open_map_writer(path, g, product, cfg.output.compress).close()
                parts.append((f, TilePartsWriter(path, map_profile(g, product, cfg.output.compress))))
        if parts:
            fused_writes.append((product, parts))
        # the other levels (blocks not on tiles) recompute the block from the same chunk bundle
        levels = [lv for lv in levels if lv[0] not in {f for f, _ in parts}]
        for _, g, path, arr in levels:
            writer = open_map_writer(path, g, product, cfg.output.compress)
            if client is not None:
                writer.close()  # workers reopen the file in update mode (blocks not aligned to tiles)
            writers.append(writer)
            stores.append((arr, writer))
    # every reduction and the aligned map writes in one task per chunk (and the bundle, if no other level needs it)
    threads, steps = (sum(client.nthreads().values()) if client is not None else 0), None
    rechunked = any(a.chunks != first.chunks for a in [lc.codes.data for lc in ctx.dates] + [r.values.data for r in ctx.rasters.values()])
    if threads and not stores and not rechunked and all(getattr(r, "order_free", False) for r in reductions):
        # on a cluster, in batches of windows: a few tasks, no round trip to the scheduler per chunk
        targets[_FUSED] = sweep.batched(reductions, fused_writes, threads=threads)
        steps = (sweep.progress_topic, len(sweep.windows))
    else:
        # local threads; a cluster without workers yet (it may grow); levels recomputed from the bundle;
        # a raster rechunked to the first date's chunks (a block read once for the windows it spans);
        # or float sums (value rasters, allocation), combined in the same tree as on local threads: the same bits
        targets[_FUSED] = sweep.fused(reductions, fused_writes, build=not stores)
    locks = []
    for k, (arr, writer) in enumerate(stores):
        # one lock per file: a GDAL dataset takes one writer at a time, but different files are
        # written concurrently (one global lock serialised every map behind the slowest encoder)
        lock = threading.Lock() if client is None else _distributed_lock()
        locks.append(lock)
        targets[f"{_MAPS}-{k}"] = da.store(arr, writer, lock=lock, compute=False, return_stored=False)
    t0 = time.perf_counter()
    passed = False  # the pass ended without an error (then a map that cannot be closed is the error)
    try:
        # the WKB read from the files (no conversion); the finest level's is the payload's
        converted = [(finest, finest_wkb)] + [(layer.geometry_grid_crs.values, layer.take_wkb()) for layer in ctx.layers[:-1]] if ctx.layers else []
        with geometries_parked(ctx.layers, converted=tuple((array, wkb) for array, wkb in converted if wkb is not None)):
            del converted, finest_wkb  # parked (or not needed) from here
            totals = compute_pass(targets, client=client, progress=progress, steps=steps)
        passed = True
    except RasterioIOError as exc:
        # GDAL names the file of a block it could not read (rasterio only says "Read failed"): a
        # damaged input is said as such even when the output disk is nearly full, which alone
        # would make the error read as a full disk; a staged map read back is the output's
        block = failed_block_read(exc)
        named = block.rsplit(", band ", 1)[0] if block else None
        read_back = {Path(w.path).name for w in writers}  # the maps the pass reopens (levels not on tiles)
        if named is None and output_write_error(exc, staged.out_dir) is not None:
            raise  # a map's tiles could not be written (disk full, read-only): the staging names it
        if named in read_back:
            if output_write_error(exc, staged.out_dir) is not None:
                raise
            raise OutputError(f"a map the pass writes could not be read back ({block})", path=staged.out_dir,
                              fix="check the output disk (`df -h`, the system log), or write elsewhere (--out DIR); then run again") from None
        inputs = [lc.path for lc in ctx.dates] + [r.path for r in ctx.rasters.values()]
        paths = ", ".join(str(p) for p in inputs if named is None or Path(p).name == named) or ", ".join(map(str, inputs))
        raise InputFileError(
            f"reading failed during the pass ({block or str(exc).splitlines()[0]})", path=paths,
            fix="check that the file is complete and, for a VRT, that every source file it names exists",
        ) from None
    finally:
        # after an interrupt or an error, dask threads may still be writing: each file is closed
        # under its lock, once its current write is done (later writes then raise), and tile
        # parts in progress end before the staging folder is removed
        part_writers = [w for _, parts in fused_writes for _, w in parts]
        for w in part_writers:  # all of them first: none takes a new part while another is waited for
            w.refuse()
        if busy := sum(w.writing for w in part_writers):
            log.info("waiting for %d map tile part(s) still being written (up to %.0f s)", busy, WRITES_TIMEOUT_S)
        deadline = time.monotonic() + WRITES_TIMEOUT_S  # one wait for them all, not one per writer
        if not all([w.close(timeout_s=max(0.0, deadline - time.monotonic())) for w in part_writers]):  # a list: every one waited for
            log.warning("map tile parts were still being written after %.0f s; the staging folder is removed regardless", WRITES_TIMEOUT_S)
        close_errors = []
        for writer, lock in zip(writers, locks):  # each closed, whatever another's close raised
            try:
                if isinstance(lock, type(threading.Lock())):
                    with lock:
                        writer.close()
                else:
                    writer.close()
            except Exception as exc:
                close_errors.append(exc)
                log.debug("closing %s: %s", writer.path, exc)
        if close_errors and passed:
            raise close_errors[0]  # a map could not be finished (e.g. a full disk at the last flush)
    timings = {"compute": round(time.perf_counter() - t0, 3)}
    return_freed_memory()  # the chunks' arrays: the tables start from what the run holds, not from the pass's high-water mark
    for key in [k for k in totals if k.startswith(_MAPS)]:
        totals.pop(key)
    totals.update(zip([r.name for r in reductions], totals.pop(_FUSED)))
    for lc in [lc for lc in ctx.dates if reduction_name(lc.year) in totals]:  # a pass of maps only checks nothing again
        cols = ctx.columns[lc.year]
        code_count = totals[reduction_name(lc.year)][1]
        _check_unknown(cols.unknown_codes(code_count), cfg.unknown_classes, ctx.table, lc.path)
        _warn_nodata_is_class(lc, ctx.table, code_count, cols.offset)
    # the maps are assembled concurrently: the coarse levels' encoding and the tile copy run
    # without the GIL (GDAL, the kernel's copy_file_range)
    with ThreadPoolExecutor(max_workers=min(len(cogs), os.cpu_count() or 1) or 1) as pool:
        list(pool.map(lambda c: finalize_cog(c[1], c[2], staged.path(c[0].filename), grid, cfg.output.compress, is_float=c[0].is_float), cogs))
    timings["maps"] = round(time.perf_counter() - t0 - timings["compute"], 3)
    return totals, timings


_MAPS = "lucr-maps"
_FUSED = "lucr-fused"


def _zone_payload(finest: ZoneLayer, grid: Grid) -> tuple[np.ndarray, ZonePayload]:
    """The finest level's polygons for the pass, and the WKB they were read from (held while the
    geometries are parked): the file's own WKB where the payload can read it, else shapely's."""
    file_wkb = finest.take_wkb()
    if file_wkb is not None:
        try:
            return file_wkb, ZonePayload.from_wkb(file_wkb, grid)
        except ValueError:
            pass  # e.g. big-endian WKB: shapely's, below, is read or says what is wrong
    wkb = polygon_wkb(finest.geometry_grid_crs.values)
    return wkb, ZonePayload.from_wkb(wkb, grid)


#: How long a failed pass waits for the map writes still running in this process's threads (s).
WRITES_TIMEOUT_S = 60.0


def _date_outputs(ctx: RunContext, lc: LandCover, area_fx: np.ndarray, code_count: np.ndarray, staged: StagedOutputs, flux_raster=None,
                  override_kind: str = "flux_raster", write: bool = True) -> YearResult:
    """The zonal tables and the summary of one date, from its cross-tab (and the flux raster's sums,
    or with ``override_kind="builtup"`` the statistics' built-up flux). ``write=False``: the tables only."""
    cfg, layers, table = ctx.config, ctx.layers, ctx.table
    cols = ctx.columns[lc.year]
    finest = layers[-1] if layers else None
    unit_rows = {}
    if finest is not None:
        unit_rows[finest.level] = area_fx[1:]
        raster_rows = {finest.level: None if flux_raster is None else flux_raster.take(slice(1, None))}
        for coarse, fine in zip(reversed(layers[:-1]), reversed(layers[1:])):
            to_parent = partial(aggregate_to_parent, child_parent_ids=fine.frame["parent_id"].to_numpy(), parent_ids=coarse.frame["unit_id"].to_numpy())
            unit_rows[coarse.level] = to_parent(unit_rows[fine.level])
            raster_rows[coarse.level] = None if flux_raster is None else raster_rows[fine.level].map_rows(to_parent)
    tables, tables_tc = {}, {}
    for zcfg, layer in zip(cfg.zones, layers):
        frame_tc = unit_table(layer, from_fixed_point(unit_rows[layer.level], ctx.scale_bits), table.coefs, table.codes, lc.grid, raster_rows[layer.level], override_kind)
        frame = express_in(frame_tc, cfg.output.units)
        if not write:
            tables[layer.level], tables_tc[layer.level] = frame, frame_tc
            continue
        write_frame(frame, zcfg.output_stem() + ctx.suffix(lc.year), cfg.output.tables, staged.path, csv_bom=cfg.output.csv_bom, lang=cfg.output.lang, classes=table)
        tables[layer.level], tables_tc[layer.level] = frame, frame_tc
        if ctx.engine == "fast" and layer is finest and lc is ctx.dates[0]:
            _warn_small_units(frame, row_cell_area_ha(lc.grid), layer.level)
    finest_rows = unit_rows.get(finest.level) if finest is not None else None
    if not write:
        return YearResult(tables=tables, summary={}, rows_fx={})
    summary = _summary(lc, table, ctx.engine, ctx.scale_bits, area_fx.sum(axis=0), finest_rows, tables_tc, code_count, cols.offset, flux_raster, override_kind)
    summary["unverified_share"] = unverified_share(table, tables_tc, cfg.unverified_warning_share) if tables_tc else None
    summary = summary_in(summary, cfg.output.units) | {"units": cfg.output.units}
    return YearResult(tables=tables, summary=summary, rows_fx={"grid": area_fx.sum(axis=0)[None], **unit_rows})


def _distributed_lock():
    from distributed import Lock

    return Lock(f"lucr-map-{uuid.uuid4().hex}")  # one per file


def _flux(area_ha: np.ndarray, coefs: np.ndarray, flux_raster=None) -> dict[str, float]:
    source, sink = flux_totals(area_ha[None], coefs, flux_raster)
    return {"source_tc": float(source[0]), "sink_tc": float(sink[0]), "net_tc": float(source[0] + sink[0])}


def _summary(lc, table, engine, scale_bits, grid_total_fx, finest_rows_fx, tables, code_count, offset, flux_raster=None, override_kind: str = "flux_raster") -> dict:
    """The run summary of one date: the totals inside the units first (what a user quotes), the
    whole raster apart and labelled (it may hold sea and neighbouring countries), then details."""
    k = table.n_classes
    grid_ha = from_fixed_point(grid_total_fx, scale_bits)
    inside = None
    if tables:
        level, frame = next(iter(tables.items()))  # the coarsest level: nested, so it holds every finer unit
        source, sink = float(frame["source_tc"].sum()), float(frame["sink_tc"].sum())
        inside = {
            "level": level, "units": len(frame), "valid_area_ha": float((frame["valid_fraction"] * frame["area_ha"]).sum()),
            "source_tc": source, "sink_tc": sink, "net_tc": source + sink, "cbc_landcover": source / -sink if sink < 0 else None,
        }
    summary = {
        "landcover": str(lc.path), "year": lc.year, "legend": table.legend, "engine": engine,
        "inside_units": inside,
        "whole_raster": {
            "note": "every cell of the raster, also outside the units (e.g. sea or neighbouring countries)",
            "valid_area_ha": float(grid_ha[:k].sum()),
            "nodata_area_ha": float(grid_ha[k + 1]),
            "unknown_area_ha": float(grid_ha[k]),
            **_flux(grid_ha[:k], table.coefs, None if flux_raster is None else flux_raster.total()),
            "class_area_ha": {str(code): float(a) for code, a in zip(table.codes, grid_ha[:k])},
        },
        "chunks": [list(c) for c in (lc.codes.data.chunks[0][:1], lc.codes.data.chunks[1][:1])],
        "grid": {"height": lc.grid.height, "width": lc.grid.width, "crs": lc.grid.crs.to_string()},
        "cells_by_code": {str(i + offset): int(n) for i, n in enumerate(code_count) if n},
        "coefficients_not_from_papers": [
            {"code": c.code, "name": c.name, "coef": c.coef, "status": c.status, "ref": table.references.get(c.ref, c.ref)} for c in table.not_from_papers()
        ],
        "levels": {},
    }
    if finest_rows_fx is not None:
        outside = from_fixed_point(grid_total_fx - finest_rows_fx.sum(axis=0), scale_bits)[:k]  # exact in fixed point
        summary["outside_units"] = {"valid_area_ha": float(outside.sum()), **_flux(outside, table.coefs, None if flux_raster is None else flux_raster.take([0]))}
    if flux_raster is not None and override_kind == "flux_raster":
        summary["flux_raster_area_ha"] = float(flux_raster.area[:, :k].sum())
    if override_kind == "builtup":
        summary["builtup_source"] = {"source": "statistics (built-up energy emissions allocated onto the built-up cells)",
                                     "units_with_statistics": int((flux_raster.area[:, :k].sum(axis=1) > 0).sum()), "builtup_statistics_tc": float(flux_raster.pos[:, :k].sum())}
    else:
        summary["builtup_source"] = {"source": "coefficient"}
    for level, frame in tables.items():
        summary["levels"][level] = {
            "units": len(frame),
            "units_without_data": frame.loc[frame["valid_fraction"] == 0, "unit_id"].tolist(),
            "valid_area_ha": float((frame["valid_fraction"] * frame["area_ha"]).sum()),
            "source_tc": float(frame["source_tc"].sum()), "sink_tc": float(frame["sink_tc"].sum()), "net_tc": float(frame["net_tc"].sum()),
        }
    return summary

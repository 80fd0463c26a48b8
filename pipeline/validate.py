"""``lucr validate``: check a run config's inputs without computing the pass."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import rasterio
import shapely
from rasterio.errors import RasterioIOError

from lucr.coefficients import load_table
from lucr.config import RunConfig
from lucr import nesting
from lucr.errors import InputFileError, UnknownClassError
from lucr.io import check_nesting, check_same_grid, no_data_error, open_landcover, read_zone_layer
from lucr.zonal import geometry_areas_ha, polygon_areas_ha

#: Rasters up to this many cells (or their smallest overview) are scanned for codes.
CODE_SCAN_MAX_CELLS = 50_000_000


@dataclass
class ValidationReport:
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _codes_sample(path, band: int) -> tuple[dict[int, int] | None, str]:
    """Cells per distinct code of the raster's smallest overview, or of the raster if small."""
    try:
        with rasterio.open(path) as src:
            factors = src.overviews(band)
            if factors:
                f = factors[-1]
                data = src.read(band, out_shape=(max(1, src.height // f), max(1, src.width // f)))
                return _counts(data), f"cells of overview 1:{f}"
            if src.width * src.height <= CODE_SCAN_MAX_CELLS:
                return _counts(src.read(band)), "cells"
    except RasterioIOError as exc:  # e.g. a truncated file: its header reads, its tiles do not
        raise InputFileError(
            f"reading the raster failed ({str(exc).splitlines()[0]})", path=path,
            fix="check that the file is complete (re-download or re-export it); `gdalinfo -checksum FILE` reads every tile",
        ) from None
    return None, "raster too large and without overviews; codes are checked during the run"


def _counts(codes: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(codes, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def validate_config(cfg: RunConfig) -> ValidationReport:
    """Open every input, check CRSs, legend coverage, nesting and overlaps; raise on errors."""
    report = ValidationReport()
    if cfg.statistics is not None:
        _check_statistics(cfg, report)
    if cfg.landcover is None:  # a statistics-only run
        return report
    table = load_table(cfg.legend, cfg.coefficients)
    report.notes.append(f"coefficient table '{table.legend}': {table.n_classes} classes, nodata {list(table.nodata)}")
    for c in table.not_from_papers():
        report.warnings.append(f"class {c.code} ({c.name}) coefficient {c.coef:g} t C/ha/yr is {c.status}")
    layers, series = [], []
    for year, path in cfg.landcover.series().items():
        lc = open_landcover(path, chunks=cfg.chunks, band=cfg.landcover.band, year=year)
        series.append(lc)
        report.notes.append(
            f"land cover {path.name}{f' ({year})' if year else ''}: {lc.grid.width} x {lc.grid.height} cells, {lc.codes.dtype}, "
            f"CRS {lc.grid.crs.to_string()}, nodata {lc.nodata}, chunks {lc.codes.data.chunksize}"
        )
        codes, how = _codes_sample(path, cfg.landcover.band or 1)
        if codes is not None:
            if lc.nodata in set(table.codes.tolist()):
                report.warnings.append(f"the raster's nodata value {lc.nodata} is a class of table '{table.legend}': those cells will count as no data")
            nodata = set(table.nodata) | ({lc.nodata} if lc.nodata is not None else set())
            if set(codes) <= nodata:
                raise no_data_error(path, sorted(nodata))
            missing = sorted(set(codes) - set(table.codes.tolist()) - nodata)
            listing = ", ".join(f"{code} ({codes[code]:,} {how})" for code in missing)
            if missing and cfg.unknown_classes == "error":  # the run would stop on them after the pass
                raise UnknownClassError(
                    f"land-cover codes missing from the coefficient table '{table.legend}': {listing}", path=path,
                    fix="add them to the coefficient table, set the raster's nodata, or set 'unknown_classes: nodata' to treat them as no data",
                )
            if missing:
                report.warnings.append(f"codes {listing} are not in the coefficient table (unknown_classes: {cfg.unknown_classes})")
            else:
                report.notes.append(f"every code found ({how}) has a coefficient")
        else:
            report.notes.append(how)
    for z in cfg.zones:
        layer = read_zone_layer(z.path, level=z.level, id_col=z.id, name_col=z.name, parent_col=z.parent, layer=z.layer, grid=lc.grid, invalid=z.invalid, keep=z.keep)
        geoms = np.asarray(layer.geometry_grid_crs.values, dtype=object)
        polygon_ha, outside_ha = polygon_areas_ha(layer, lc.grid)
        union_ha = float(geometry_areas_ha([shapely.union_all(geoms)], lc.grid.crs)[0])
        overlap = polygon_ha.sum() - union_ha
        report.notes.append(f"zones '{z.level}' {z.path.name}: {len(layer.frame)} units, CRS {layer.frame.crs.to_string()}, {polygon_ha.sum() / 1e6:,.2f} Mha")
        if overlap > 1e-6 * union_ha:
            report.warnings.append(f"units of level '{z.level}' overlap by {overlap:,.0f} ha: cells in overlaps count for one unit only")
        if outside_ha.sum() > 0:
            report.warnings.append(f"{outside_ha.sum():,.0f} ha of level '{z.level}' lies outside the land-cover extent (counted as no data)")
        layers.append(layer)
    check_nesting(layers)
    nesting.check(layers, [(z.nesting, z.nesting_tolerance) for z in cfg.zones[1:]])  # as the run checks them
    _run_checks(cfg, series, layers, table)
    if cfg.analysis is not None:
        from lucr.runner import analysed_levels

        years = list(cfg.landcover.series())
        for zcfg, sections in analysed_levels(cfg, table, years):  # raises on unknown columns or years
            report.notes.append(f"analysis of {zcfg.plural}: {', '.join(sections) or 'nothing to run'} ({len(years)} year(s))")
    return report


def _check_statistics(cfg: RunConfig, report: ValidationReport) -> None:
    """The statistics table and factor tables, read and checked as the run reads them."""
    from lucr.errors import ConfigError
    from lucr.inventory import load_carbon_oxygen_factors, load_inventory_factors, read_statistics

    s = cfg.statistics
    factors, _ = load_inventory_factors(s.factors), load_carbon_oxygen_factors(s.carbon_oxygen)
    if s.energy_factor not in factors.energy_factors:
        raise ConfigError(f"statistics.energy_factor {s.energy_factor!r} is not in table {factors.table!r}", path=cfg.source, fix=f"use one of: {', '.join(factors.energy_factors)}")
    if s.level is not None and s.level not in [z.level for z in cfg.zones]:
        raise ConfigError(f"statistics.level {s.level!r} is not a zone level of the run", path=cfg.source, fix=f"use one of: {[z.level for z in cfg.zones]}")
    stats = read_statistics(s.path, id_col=s.id, year_col=s.year, sheet=s.sheet, other=tuple(c for c in (s.name,) if c))
    years = sorted({int(y) for y in stats.index.get_level_values("year")})
    report.notes.append(f"statistics {s.path.name}: {stats.index.get_level_values('unit_id').nunique()} units, years {years[0]}-{years[-1]}, variables {', '.join(stats.columns)}")


def _run_checks(cfg: RunConfig, series, layers, table) -> None:
    """The checks ``lucr run`` makes before its pass, so that validate finds what the run would hit."""
    from lucr.change.scenarios import check as check_scenarios
    from lucr.change.stocks import pools_per_class, read_pools
    from lucr.runner import _value_rasters

    check_same_grid(series)
    _value_rasters(cfg, series)  # flux and stock rasters on the land-cover grid
    if cfg.change is not None:
        if cfg.change.pools is not None:
            pools_per_class(read_pools(cfg.change.pools), table.classes)
        if cfg.change.scenarios:
            check_scenarios(cfg.change.scenarios, [lc.year for lc in series], layers, table)

"""The statistics route's outputs in a run: its tables (in the output unit), the risk of its
units (seed 003's CBC, :func:`lucr.analysis.risk.assess_statistics`), and the whole run when
there is no land cover (tables, risk, ``run.json`` and the report from the statistics alone).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from lucr.export import table_names, write_frame
from lucr.inventory.stage import output_stems, run_statistics
from lucr.units import express_in

log = logging.getLogger("lucr")


def risk_level(cfg) -> str:
    """The level word of the statistics route's risk tables: ``inventory`` (``inventory_provinces`` with ``statistics.level``)."""
    return output_stems(cfg)[0]


def output_names(cfg) -> list[str]:
    """Every file the statistics route may write in a run (staged before anything is computed)."""
    from lucr.analysis.risk import output_stems as risk_stems

    stems = output_stems(cfg) + (risk_stems(risk_level(cfg)) if cfg.risk is not None else [])
    return [n for stem in stems for n in table_names(stem, cfg.output.tables)]


def write(inventory, cfg, path_of):
    """Write the statistics route's tables and, with a ``risk`` section, the risk of its units.
    Returns the :class:`lucr.analysis.risk.RiskResult` (None without risk)."""
    fmt = dict(csv_bom=cfg.output.csv_bom, lang=cfg.output.lang)
    tables = {stem: express_in(frame, cfg.output.units) for stem, frame in inventory.tables.items()}
    for stem, frame in tables.items():
        write_frame(frame, stem, cfg.output.tables, path_of, **fmt)
    if cfg.risk is None:
        return None
    if cfg.risk.indicator != "cbc":  # (a statistics-only config with another indicator is refused when read)
        log.warning("risk of the statistics route skipped: it grades CBC, the run's risk.indicator is %s", cfg.risk.indicator)
        return None
    from lucr.analysis.risk import assess_statistics, write_results

    stem = output_stems(cfg)[0]
    frame = tables[stem]
    result = assess_statistics(pd.DataFrame(frame).drop(columns="geometry", errors="ignore"), cfg.statistics.level or "unit", cfg.risk)
    table = result.table
    if "geometry" in frame:
        import geopandas as gpd

        geometry = frame[["unit_id", "geometry"]].drop_duplicates("unit_id")
        table = gpd.GeoDataFrame(table.merge(geometry, on="unit_id", how="left"), geometry="geometry", crs=frame.crs)
    write_results(result, table, risk_level(cfg), cfg, path_of)
    return result


def statistics_only(cfg, out_dir: Path, overwrite: bool, started: float):
    """A run without land cover: the statistics route's tables (joined to the polygons of
    ``statistics.level`` if given), their risk, ``run.json`` and the report."""
    from types import SimpleNamespace

    import geopandas as gpd

    from lucr.export import StagedOutputs
    from lucr.provenance import InputHashes, run_record
    from lucr.report_html import REPORT
    from lucr.report_html import write as write_report
    from lucr.runner import RUN_RECORD, RunResult, refuse_replacing_inputs

    layers = []
    for z in cfg.zones:
        if z.level == cfg.statistics.level:
            frame = gpd.read_file(z.path, layer=z.layer, engine="pyogrio")
            frame = frame.rename(columns={z.id: "unit_id", **({z.name: "name"} if z.name else {})})
            frame["unit_id"] = frame["unit_id"].astype(str)
            layers.append(SimpleNamespace(level=z.level, frame=frame if "name" in frame else frame.assign(name=frame["unit_id"])))
    names = output_names(cfg) + [RUN_RECORD] + ([REPORT] if cfg.output.report else [])
    inputs = [p for p in (cfg.source, cfg.statistics.path, *(z.path for z in cfg.zones)) if p]
    refuse_replacing_inputs(out_dir, names, [Path(p) for p in inputs])
    with InputHashes([Path(p) for p in inputs], cfg.output.input_hashes) as hashes, StagedOutputs(out_dir, names, overwrite) as staged:
        inventory = run_statistics(cfg, layers=layers)
        risk = write(inventory, cfg, staged.path)
        config_dir = Path(cfg.source).parent if cfg.source else Path.cwd()
        record = run_record(config=cfg, config_dir=config_dir, inputs=hashes.result(config_dir), tables=[], started=started,
                            outputs=sorted(n for n in names if staged.path(n).exists()))
        record["statistics"] = inventory.summary
        staged.path(RUN_RECORD).write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        if REPORT in names:
            write_report(staged.staging, staged.path(REPORT), lang=cfg.output.lang)
        outputs = staged.commit()
    return RunResult(out_dir=out_dir, outputs=outputs, by_year={}, inventory=inventory, risk={"statistics": risk} if risk is not None else {})

"""``lucr`` command line: run, analyze, validate, legends.

User errors (``LucrError``) end with a one-paragraph message and exit code 2; pass
``--debug`` for the traceback.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from lucr.errors import LucrError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="lucr: land-use carbon balance maps, zonal statistics and risk classes.")
console = Console(stderr=True)
out = Console()
_state = {"debug": False}


class _Once(logging.Filter):
    """Say each message once per command (e.g. the same island units for two variables' weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _setup_logging(quiet: bool) -> None:
    handler = RichHandler(console=console, show_path=False, show_time=False)
    handler.addFilter(_Once())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("lucr").setLevel(logging.WARNING if quiet else logging.INFO)
    logging.captureWarnings(True)


def output_listing(paths: list[Path]) -> list[str]:
    """One line per output stem with its formats: ``zonal_provinces .gpkg .csv .parquet``."""
    stems: dict[str, list[str]] = {}
    for p in paths:
        stems.setdefault(p.stem, []).append(p.suffix)
    return [f"{stem} {' '.join(exts)}" for stem, exts in stems.items()]


def _print_version(value: bool) -> None:
    if value:
        from lucr import __version__

        out.print(f"lucr {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks of errors"),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="print lucr's version and exit"),
) -> None:
    _state["debug"] = debug


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="YAML run config (default: the bundled China 2019 sample)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default: output.dir of the config, lucr-output)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask.distributed scheduler address (default: local threads)"),
    chunks: Optional[int] = typer.Option(None, "--chunks", min=64, help="chunk side in cells (rounded to the file's tiles)"),
    engine: Optional[str] = typer.Option(None, "--engine", help="zonal engine: exact (default; coverage fractions at unit boundaries) or fast (cell centres)"),
    units: Optional[str] = typer.Option(None, "--units", help="carbon unit of maps and tables: 't C' (default) or 't CO2' (x 44/12)"),
    lang: Optional[str] = typer.Option(None, "--lang", help="language of the summary and of column titles: en or zh"),
    levels: Optional[str] = typer.Option(None, "--levels", help="only these zone levels, e.g. province,city (the config's names)"),
    no_analysis: bool = typer.Option(False, "--no-analysis", help="skip the analysis section of the config"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar, no summary, warnings only"),
) -> None:
    """Land cover (and statistics) -> carbon-balance COG, zonal tables, risk grades and warnings, report."""
    from lucr.config import load_config, with_options
    from lucr.i18n import text
    from lucr.report import StepStatus, dask_progress, headline, summary_table
    from lucr.runner import run as run_spine

    _setup_logging(quiet)
    if engine not in (None, "fast", "exact"):
        raise LucrError(f"unknown engine {engine!r}", fix="use --engine fast or --engine exact")
    cfg = with_options(load_config(config), units=units, lang=lang, levels=levels, no_analysis=no_analysis)
    steps = StepStatus(console)
    try:
        result = run_spine(
            cfg, out_dir=out_dir, overwrite=overwrite, scheduler_address=scheduler, chunks=chunks, engine=engine,
            progress=None if quiet else (lambda: dask_progress(console)), status=None if quiet else steps,
        )
    finally:
        steps.stop()
    if not quiet:
        lang = cfg.output.lang
        for year, result_year in result.by_year.items():
            s = result_year.summary
            for zcfg in cfg.zones:
                frame = result_year.tables[zcfg.level]
                if len(frame) <= 60:
                    out.print(summary_table(frame, zcfg.level, str(year or text("undated", lang)), cfg.output.units, lang))
            for line in headline(s, cfg.zones[0].plural if cfg.zones else None, lang):
                out.print(line, highlight=False)
            out.print(text("timing", lang, seconds=s["seconds"]), highlight=False)
        from lucr.report import analysis_tables, risk_lines

        for zcfg in cfg.zones:
            if zcfg.level in result.risk:
                for line in risk_lines(result.risk[zcfg.level], zcfg.plural, lang):
                    out.print(line, highlight=False)
        if "statistics" in result.risk:
            for line in risk_lines(result.risk["statistics"], "units of the statistics (seed 003 CBC)", lang):
                out.print(line, highlight=False)
        for analysed in result.analyses.values():
            for rich_table in analysis_tables(analysed):
                if rich_table.row_count <= 60:
                    out.print(rich_table)
        if result.change is not None:
            from lucr.report import change_tables

            for rich_table in change_tables(result.change):
                out.print(rich_table)
        out.print(text("wrote", lang, n=len(result.outputs), folder=result.out_dir), highlight=False)
        for line in output_listing(result.outputs):
            out.print(f"  {line}", highlight=False)


@app.command()
def validate(config: Path = typer.Argument(..., help="YAML run config to check, or an output folder to check against the declared outputs")) -> None:
    """Check a config's inputs without computing, or an output folder against the declared outputs."""
    from lucr.config import load_config
    from lucr.validate import validate_config

    _setup_logging(quiet=False)
    if config.is_dir():
        from lucr.outputs_spec import check_folder

        found = check_folder(config)
        for name in found.undeclared_files:
            out.print(f"  [red]undeclared file:[/] {name}")
        for name, columns in found.undeclared_columns.items():
            out.print(f"  [red]undeclared column(s) in {name}:[/] {', '.join(columns)}")
        if not found.ok:
            out.print(f"[red]{config}: outputs not in lucr's declaration[/] (pipeline/outputs_spec.py; files a user added are listed too)")
            raise typer.Exit(1)
        out.print(f"[green]{len(found.files)} files, all declared outputs[/] ({len(set(found.files.values()))} kinds)")
        return
    report = validate_config(load_config(config))
    for line in report.notes:
        out.print(f"  {line}")
    for line in report.warnings:
        out.print(f"  [yellow]warning:[/] {line}")
    out.print("[green]config is valid[/]" if not report.warnings else f"[yellow]config is valid with {len(report.warnings)} warning(s)[/]")


@app.command()
def analyze(
    table: Path = typer.Argument(..., help="per-unit table: CSV, Parquet or GeoPackage, one row per unit (and year)"),
    id_col: str = typer.Option(..., "--id", help="column of unit ids"),
    table_layer: Optional[str] = typer.Option(None, "--layer", help="layer of the table, if it is a file of several layers"),
    year_col: Optional[str] = typer.Option(None, "--year", help="column of years (omit for a single period)"),
    values: list[str] = typer.Option(..., "--value", help="column to analyse (repeat for several)"),
    polygons: Optional[Path] = typer.Option(None, "--polygons", help="unit polygons for Moran's I, LISA and centres of gravity"),
    polygons_id: Optional[str] = typer.Option(None, "--polygons-id", help="id column of the polygons (default: --id)"),
    polygons_layer: Optional[str] = typer.Option(None, "--polygons-layer", help="layer of the polygon file"),
    name_col: Optional[str] = typer.Option(None, "--name", help="name column of the polygons, copied to the LISA table"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with an 'analysis' section (options below override it)"),
    weights: Optional[str] = typer.Option(None, "--weights", help="queen (default), rook, knn or distance"),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="neighbours for --weights knn"),
    distance_km: Optional[float] = typer.Option(None, "--distance-km", help="band for --weights distance"),
    islands: Optional[str] = typer.Option(None, "--islands", help="units without neighbours: nearest (default) or exclude"),
    permutations: Optional[int] = typer.Option(None, "--permutations", help="permutations of Moran/LISA inference (default 999)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed of the permutations"),
    missing: Optional[str] = typer.Option(None, "--missing", help="units with missing years: interpolate (default) or drop"),
    until: Optional[int] = typer.Option(None, "--until", help="forecast up to this year"),
    horizon: Optional[int] = typer.Option(None, "--horizon", min=1, help="forecast this many steps"),
    reference: Optional[str] = typer.Option(None, "--reference", help="reference column of the grey relational analysis"),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="comparison column of the grey relational analysis (repeat)"),
    gravity: Optional[list[str]] = typer.Option(None, "--gravity", help="column whose centre of gravity, ellipse and trajectory are computed (repeat; needs --polygons)"),
    out_dir: Path = typer.Option(Path("lucr-analysis"), "--out", help="output folder"),
    formats: list[str] = typer.Option(["gpkg", "csv", "parquet"], "--format", help="table formats (repeat)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="warnings only"),
) -> None:
    """Forecasts, grey relations, Moran's I / LISA and centres of gravity of a per-unit table."""
    from lucr.analysis import analyse_file
    from lucr.config import analysis_settings

    _setup_logging(quiet)
    settings = analysis_settings(
        config, variables=values, weights=weights, k=k, distance_km=distance_km, islands=islands, permutations=permutations, seed=seed,
        missing_years=missing, until=until, horizon=horizon, reference=reference, compare=compare, gravity=gravity,
    )
    bad = [f for f in formats if f not in ("gpkg", "csv", "parquet")]
    if bad:
        raise LucrError(f"unknown table format(s) {bad}", fix="use --format gpkg, csv or parquet")
    result, written = analyse_file(
        table, id_col=id_col, year_col=year_col, settings=settings, out_dir=out_dir, polygons_path=polygons, polygons_id=polygons_id,
        polygons_layer=polygons_layer, name_col=name_col, table_layer=table_layer, formats=tuple(formats), overwrite=overwrite,
    )
    if not quiet:
        from lucr.report import analysis_tables

        for rich_table in analysis_tables(result):
            out.print(rich_table)
        for p in written:
            out.print(f"  wrote {p}")


@app.command()
def legends(
    name: Optional[str] = typer.Argument(None, help="a legend (e.g. igbp) or a coefficient table file: print its classes"),
    units: str = typer.Option("t C", "--units", help="'t C' or 't CO2'"),
) -> None:
    """List the built-in legends, or print one legend's classes with their coefficients and sources."""
    from lucr.coefficients import builtin_legends, load_table
    from lucr.legend import load_legend

    from rich import box

    if name is not None:
        _print_legend(name, units)
        return

    table = Table(title="built-in legends (classes by status of their flux value)", header_style="bold", box=box.SIMPLE)
    for col in ("legend", "classes", "nodata", "flux table", "paper", "literature", "unverified"):
        table.add_column(col, no_wrap=True, min_width=len(col), justify="left" if col in ("legend", "flux table") else "right")
    titles = []
    for name in builtin_legends():
        legend, t = load_legend(name), load_table(name)
        count = lambda s: str(sum(c.status == s for c in t.classes))  # noqa: E731
        table.add_row(name, str(t.n_classes), ",".join(map(str, t.nodata)), legend.parameters.get("flux", ""), count("paper"), count("literature_default"), count("unverified"))
        titles.append(f"  [bold]{name}[/]: {legend.title}")
    out.print(table)
    for line in titles:
        out.print(line, highlight=False)
    out.print("\nconfigs/legends/: codes, names, categories; configs/parameters/: values, sources", highlight=False)


def _print_legend(name: str, units: str) -> None:
    """The classes of a legend or coefficient table: code, name, coefficient, unit, status and source."""
    from rich import box

    from lucr.coefficients import load_table
    from lucr.units import UNITS, density_label, factor

    if units not in UNITS:
        raise LucrError(f"unknown unit {units!r}", fix="use --units 't C' or --units 't CO2'")
    t = load_table(path=name) if Path(name).suffix else load_table(name)
    table = Table(title=f"{t.legend}: {t.title}" if t.title else t.legend, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    for col, justify in (("code", "right"), ("name", "left"), ("coef", "right"), ("status", "left"), ("source", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for c in t.classes:
        colour = {"paper": "green", "literature_default": "yellow", "unverified": "red"}.get(c.status, "")
        status = f"[{colour}]{c.status}[/]" if colour else c.status
        table.add_row(str(c.code), c.name, f"{c.coef * factor(units):+.4g}", status, c.ref or "-")
    out.print(table)
    for ref in dict.fromkeys(c.ref for c in t.classes if c.ref):
        out.print(f"[bold]{ref}[/]: {t.references.get(ref, '(no citation in the table)')}", highlight=False)
    out.print(f"coef: {density_label(units)}, sources positive, sinks negative; nodata codes: {', '.join(map(str, t.nodata)) or 'none'}", highlight=False)
    out.print(f"table: {t.path}", highlight=False)


@app.command()
def report(
    folder: Path = typer.Argument(Path("lucr-output"), help="output folder of lucr run"),
    out_file: Optional[Path] = typer.Option(None, "--out", help="where to write it (default FOLDER/report.html)"),
    lang: str = typer.Option("en", "--lang", help="headings and headline: en or zh"),
) -> None:
    """Rebuild report.html from the outputs of a run (no recomputation)."""
    from lucr.report_html import write

    _setup_logging(quiet=False)
    if not folder.is_dir():
        raise LucrError("output folder not found", fix="give the --out folder of a lucr run")
    if lang not in ("en", "zh"):
        raise LucrError(f"unknown language {lang!r}", fix="use --lang en or --lang zh")
    out.print(f"wrote {write(folder, out_file, lang=lang)}", highlight=False)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that the run unwinds as on Ctrl-C."""


def _on_sigterm(signum, frame):
    _state["terminated"] = True  # click may turn the exception into an exit code: remember the signal
    raise Terminated()


def _interrupted() -> None:
    """Say so and exit 130 (SIGINT) or 143 (SIGTERM).

    The run has cleaned up by now (staging removed, writers closed). The exit skips the
    interpreter's wait for worker threads: an interrupt that lands inside the thread
    pool's own bookkeeping can leave a worker that never gets its stop signal (seen: a
    process waiting forever in ``threading._shutdown``).
    """
    terminated = _state.get("terminated", False)
    console.print(f"[bold red]lucr: interrupted[/]{' (SIGTERM)' if terminated else ''}; no output was published", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(143 if terminated else 130)


def _exit_without_teardown() -> None:
    """End the process after a command that succeeded, without the interpreter's teardown.

    Freeing the modules of pyarrow, pandas and dask at exit took 0.4-0.7 s (``import
    lucr.runner`` and exit: 1.60 s, against 1.17 s this way), a fifth of a 1e8-cell run.
    The atexit handlers still run and both streams are flushed; every output is closed and
    published before a command returns.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that left (`lucr ... | head`), a full disk, a closed stream
            pass
    os._exit(0)


def entry_point() -> None:
    """The ``lucr`` console script: :func:`main`, then the end of the process without the
    interpreter's teardown (in-process callers of :func:`main`, e.g. tests, keep running)."""
    main()
    _exit_without_teardown()


def main() -> None:
    """Console entry point: maps user errors to a message and exit code 2.

    Ctrl-C (SIGINT) and SIGTERM cancel the run: the pass stops, the map writers finish
    the block they are writing, the staging folder is removed, nothing is published, and
    lucr exits with 130 (SIGINT) or 143 (SIGTERM) and says so.
    """
    warnings.filterwarnings("ignore", category=FutureWarning)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)  # returns an exit code instead of exiting (e.g. 130 after an interrupt)
        if code == 130:
            _interrupted()
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except LucrError as exc:
        if _state["debug"]:
            raise
        console.print(f"[bold red]lucr: error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)))
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        # usage errors of click / typer (typer >= 0.20 vendors its own click classes)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":  # click's wrapper of KeyboardInterrupt
            _interrupted()
        raise


if __name__ == "__main__":
    entry_point()

"""``lucr`` command line: run, validate, legends.

User errors (``LucrError``) end with a one-paragraph message and exit code 2; pass
``--debug`` for the traceback.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from pipeline.errors import LucrError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="lucr: land-use carbon balance maps, zonal statistics and risk classes.")
console = Console(stderr=True)
out = Console()
_state = {"debug": False}


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING, handlers=[RichHandler(console=console, show_path=False, show_time=False)], format="%(message)s", force=True)
    logging.getLogger("lucr").setLevel(logging.WARNING if quiet else logging.INFO)
    logging.captureWarnings(True)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="show tracebacks of errors")) -> None:
    _state["debug"] = debug


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="YAML run config (default: the bundled China 2019 sample)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="output folder (default: output.dir of the config, lucr-output)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask.distributed scheduler address (default: local threads)"),
    chunks: Optional[int] = typer.Option(None, "--chunks", min=64, help="chunk side in cells (rounded to the file's tiles)"),
    engine: Optional[str] = typer.Option(None, "--engine", help="zonal engine: fast or exact"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar, no summary, warnings only"),
) -> None:
    """Land cover -> carbon_balance.tif (COG) + zonal tables per admin level."""
    from pipeline.config import load_config
    from pipeline.report import dask_progress, summary_table
    from pipeline.run import run as run_spine

    _setup_logging(quiet)
    if engine not in (None, "fast", "exact"):
        raise LucrError(f"unknown engine {engine!r}", fix="use --engine fast or --engine exact")
    cfg = load_config(config)
    result = run_spine(
        cfg, out_dir=out_dir, overwrite=overwrite, scheduler_address=scheduler, chunks=chunks, engine=engine,
        progress=None if quiet else (lambda: dask_progress(console)),
    )
    if not quiet:
        for year, result_year in result.by_year.items():
            s = result_year.summary
            for level, frame in result_year.tables.items():
                if len(frame) <= 60:
                    out.print(summary_table(frame, f"{level} totals ({s['legend']}, {year or 'undated'})"))
            out.print(
                f"{year or 'grid'}: valid area {s['valid_area_ha'] / 1e6:,.1f} Mha, source {s['source_tc'] / 1e6:,.2f}, sink {s['sink_tc'] / 1e6:,.2f}, "
                f"net {s['net_tc'] / 1e6:,.2f} Mt C/yr; pass and outputs in {s['seconds']:.1f} s"
            )
        for p in result.outputs:
            out.print(f"  wrote {p}")


@app.command()
def validate(config: Path = typer.Argument(..., help="YAML run config to check")) -> None:
    """Check inputs, CRSs, legends and polygon overlaps without computing."""
    from pipeline.config import load_config
    from pipeline.validate import validate_config

    _setup_logging(quiet=False)
    report = validate_config(load_config(config))
    for line in report.notes:
        out.print(f"  {line}")
    for line in report.warnings:
        out.print(f"  [yellow]warning:[/] {line}")
    out.print("[green]config is valid[/]" if not report.warnings else f"[yellow]config is valid with {len(report.warnings)} warning(s)[/]")


@app.command()
def legends() -> None:
    """List the built-in legends and their coefficient tables."""
    from pipeline.coefficients import builtin_legends, load_table

    table = Table(title="built-in coefficient tables (t C / ha / yr, sources positive)", header_style="bold")
    for col in ("legend", "classes", "nodata", "paper", "lit. default", "unverified", "title"):
        table.add_column(col, no_wrap=col != "title")
    for name in builtin_legends():
        t = load_table(name)
        count = lambda s: str(sum(c.status == s for c in t.classes))  # noqa: E731
        table.add_row(name, str(t.n_classes), ",".join(map(str, t.nodata)), count("paper"), count("literature_default"), count("unverified"), t.title)
    out.print(table)


def main() -> None:
    """Console entry point: maps user errors to a message and exit code 2."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        app(standalone_mode=False)
    except LucrError as exc:
        if _state["debug"]:
            raise
        console.print(f"[bold red]lucr: error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)))
    except KeyboardInterrupt:
        console.print("[bold red]lucr: interrupted[/]; no output was published")
        sys.exit(130)
    except Exception as exc:
        # usage errors of click / typer (typer >= 0.20 vendors its own click classes)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()

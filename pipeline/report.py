"""What the user sees in the terminal: a progress bar for the pass and a summary table."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from dask.callbacks import Callback
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class _DaskRichProgress(Callback):
    """Advance a rich progress bar as dask tasks finish (local schedulers)."""

    def __init__(self, progress: Progress, task_id):
        super().__init__()
        self.progress = progress
        self.task_id = task_id

    def _start_state(self, dsk, state):
        self.progress.update(self.task_id, total=sum(len(state[k]) for k in ("ready", "waiting", "running")) + len(state.get("finished", ())))

    def _posttask(self, key, result, dsk, state, worker_id):
        self.progress.advance(self.task_id)


class PassProgress:
    """The bar of one pass: local schedulers advance it through dask callbacks; on a
    ``dask.distributed`` cluster, :meth:`watch` follows the futures on the scheduler."""

    def __init__(self, progress: Progress, task_id):
        self.progress = progress
        self.task_id = task_id

    def watch(self, futures) -> None:
        """Advance the bar as the cluster computes ``futures`` (in a thread of its own)."""
        import threading

        from distributed.diagnostics.progressbar import TextProgressBar

        progress, task_id = self.progress, self.task_id

        class _Bar(TextProgressBar):  # the scheduler's counts, drawn by rich instead of printed
            def _draw_bar(self, remaining, all, **kwargs):
                progress.update(task_id, total=all, completed=all - remaining)

            def _draw_stop(self, **kwargs):
                pass

        threading.Thread(target=_Bar, args=(futures,), kwargs={"interval": "200ms"}, daemon=True, name="lucr-progress").start()


@contextmanager
def dask_progress(console: Console, description: str = "single pass over the land cover") -> Iterator[PassProgress]:
    """Context manager showing a progress bar of the dask tasks computed inside it."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tasks"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task_id = progress.add_task(description, total=None)
        with _DaskRichProgress(progress, task_id):
            yield PassProgress(progress, task_id)
        progress.update(task_id, completed=progress.tasks[0].total or 0)


def _mt(value: float) -> str:
    return f"{value / 1e6:,.2f}"


def summary_table(frame, title: str) -> Table:
    """A rich table of a zonal table: area, sources, sinks and net (Mt C / yr) per unit."""
    table = Table(title=title, show_footer=True, header_style="bold")
    table.add_column("unit", footer="total")
    table.add_column("name")
    table.add_column("area (Mha)", justify="right", footer=f"{frame['area_ha'].sum() / 1e6:,.1f}")
    table.add_column("valid %", justify="right")
    table.add_column("source Mt C/yr", justify="right", footer=_mt(frame["source_tc"].sum()))
    table.add_column("sink Mt C/yr", justify="right", footer=_mt(frame["sink_tc"].sum()))
    table.add_column("net Mt C/yr", justify="right", footer=_mt(frame["net_tc"].sum()))
    table.add_column("net t C/ha/yr", justify="right")
    for row in frame.itertuples():
        net_style = "red" if row.net_tc > 0 else "green"
        table.add_row(
            str(row.unit_id), str(row.name), f"{row.area_ha / 1e6:,.2f}", f"{100 * row.valid_fraction:.1f}",
            _mt(row.source_tc), _mt(row.sink_tc), f"[{net_style}]{_mt(row.net_tc)}[/]", f"{row.net_tc_per_ha:.3f}",
        )
    return table


def analysis_tables(result) -> list[Table]:
    """Rich tables of an analysis: Moran's I per variable-year, forecast grades, gravity shifts."""
    tables = []
    moran = result.tables.get("moran")
    if moran is not None and len(moran):
        t = Table(title=f"{result.label}: global Moran's I ({moran['weights'].iloc[0]} weights, {int(moran['permutations'].iloc[0])} permutations)", header_style="bold")
        for col in ("variable", "year", "I", "E[I]", "z (perm.)", "p (perm.)", "n", "status"):
            t.add_column(col, justify="left" if col in ("variable", "status") else "right", no_wrap=col == "variable")
        for r in moran.itertuples():
            t.add_row(str(r.variable), _year(r.year), f"{r.I:.4f}", f"{r.expected_I:.4f}", f"{r.z_sim:.2f}", f"{r.p_sim:.4f}", str(r.n), str(r.status))
        tables.append(t)
    lisa = result.tables.get("lisa")
    if lisa is not None and len(lisa):
        counts = lisa.groupby(["variable", "year", "cluster"], dropna=False).size().unstack("cluster", fill_value=0)
        t = Table(title=f"{result.label}: LISA clusters (units)", header_style="bold")
        for col in ("variable", "year", *counts.columns):
            t.add_column(str(col), justify="left" if col == "variable" else "right")
        for (variable, year), row in counts.iterrows():
            t.add_row(str(variable), _year(year), *[str(v) for v in row])
        tables.append(t)
    fit = result.tables.get("forecast_fit")
    if fit is not None and len(fit) and "grade" in fit:
        gm = fit[fit["method"] == "gm11"]
        counts = gm.groupby(["variable", "grade"]).size().unstack("grade", fill_value=0)
        t = Table(title=f"{result.label}: GM(1,1) accuracy grades (units)", header_style="bold")
        for col in ("variable", *counts.columns):
            t.add_column(str(col), justify="left" if col == "variable" else "right")
        for variable, row in counts.iterrows():
            t.add_row(str(variable), *[str(v) for v in row])
        tables.append(t)
    track = result.tables.get("gravity_track")
    if track is not None and len(track):
        t = Table(title=f"{result.label}: centre-of-gravity trajectory", header_style="bold")
        for col in ("variable", "from", "to", "km", "bearing", "direction"):
            t.add_column(col, justify="left" if col in ("variable", "direction") else "right")
        for r in track.itertuples():
            t.add_row(str(r.variable), str(r.from_year), str(r.to_year), f"{r.distance_km:,.1f}", f"{r.bearing_deg:.0f}", str(r.direction))
        tables.append(t)
    return tables


def _year(year) -> str:
    return "" if year is None or str(year) in ("<NA>", "nan", "None") else str(year)


def change_tables(change) -> list[Table]:
    """Rich tables of a change run: the whole raster's transition matrix per interval, sequestration per unit."""
    tables = []
    wide = change.tables.get("transition_matrix_grid")
    if wide is not None:
        to_cols = [c for c in wide.columns if c.startswith("area_ha_to_")]
        for (a, b), part in wide.groupby(["year_from", "year_to"], sort=False):
            if len(to_cols) > 12:
                continue
            scale, unit = _area_unit(part[to_cols].to_numpy().max())
            t = Table(title=f"whole raster: transitions {a} -> {b} ({unit})", header_style="bold")
            t.add_column(f"{a} \\ {b}")
            for c in to_cols:
                t.add_column(c.removeprefix("area_ha_to_"), justify="right")
            for r in part.itertuples():
                t.add_row(f"{r.class_from} {r.name_from}", *[f"{getattr(r, c) / scale:,.1f}" for c in to_cols])
            tables.append(t)
    for stem, seq in change.tables.items():
        if not stem.startswith("sequestration_") or len(seq) > 60:
            continue
        scale, unit = _mass_unit(seq["sequestration_tc"].abs().max())
        t = Table(title=f"carbon stock change, {stem.removeprefix('sequestration_')} ({unit} C)", header_style="bold")
        for col in ("unit", "years", "stock", "change", "per yr", *(["NPV (M)"] if "npv" in seq else [])):
            t.add_column(col, justify="left" if col in ("unit", "years") else "right", no_wrap=True, max_width=24 if col == "unit" else None)
        for r in seq.itertuples():
            t.add_row(str(r.name), f"{r.year_from}-{r.year_to}", f"{r.stock_to_tc / scale:,.1f}", f"{r.sequestration_tc / scale:,.1f}",
                      f"{r.sequestration_tc_per_yr / scale:,.2f}", *([f"{r.npv / 1e6:,.2f}"] if "npv" in seq else []))
        tables.append(t)
    return tables


def _mass_unit(max_t: float) -> tuple[float, str]:
    """Scale and unit for masses of this magnitude (t, kt, Mt)."""
    if max_t >= 1e7:
        return 1e6, "Mt"
    if max_t >= 1e4:
        return 1e3, "kt"
    return 1.0, "t"


def _area_unit(max_ha: float) -> tuple[float, str]:
    """Scale and unit for areas of this magnitude (ha, kha, Mha)."""
    if max_ha >= 1e7:
        return 1e6, "Mha"
    if max_ha >= 1e4:
        return 1e3, "kha"
    return 1.0, "ha"

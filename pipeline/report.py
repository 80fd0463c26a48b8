"""What the user sees in the terminal: a progress bar for the pass and a summary table."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from dask.callbacks import Callback
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lucr.i18n import text
from lucr.units import renamed


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
    ``dask.distributed`` cluster, :meth:`follow` counts the chunks the workers report done
    (a batched pass), or :meth:`watch` follows the futures on the scheduler."""

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

    def follow(self, client, topic: str, total: int, unit: str = "chunks") -> None:
        """Advance the bar by the events of ``topic`` on the cluster's scheduler (each the number of a step done), out of ``total``."""
        progress, task_id = self.progress, self.task_id
        progress.update(task_id, total=total, completed=0, unit=unit)
        done: set = set()

        def advance(event) -> None:  # (time, step), on the client's event loop
            done.add(event[1])  # a batch run again (its worker died) reports its steps again
            progress.update(task_id, completed=len(done))

        client.subscribe_topic(topic, advance)


@contextmanager
def dask_progress(console: Console, description: str = "single pass over the land cover") -> Iterator[PassProgress]:
    """Context manager showing a progress bar of the dask tasks computed inside it."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task_id = progress.add_task(description, total=None, unit="tasks")
        with _DaskRichProgress(progress, task_id):
            yield PassProgress(progress, task_id)
        progress.update(task_id, completed=progress.tasks[0].total or 0)


def _packed(items: list[str], sep: str, indent: str, width: int = 80, hang: str = "  ") -> list[str]:
    """``items`` joined by ``sep`` in lines of at most ``width`` cells, broken between items only
    (a terminal would otherwise break "strong sink 80" between the label and its count). A
    broken line ends with the separator (trailing spaces cut); the lines it continues into are
    indented by ``hang`` more, so a list that wraps does not read as two lists."""
    end = sep.rstrip()
    lines: list[str] = []
    line = ""
    for k, item in enumerate(items):
        lead = indent + (hang if lines else "")
        candidate = f"{line}{sep}{item}" if line else item
        more = end if k < len(items) - 1 else ""  # room for the separator, if the line may break after this item
        if line and cell_len(lead + candidate + more) > width:
            lines.append(lead + line + end)
            candidate = item
        line = candidate
    return lines + ([indent + (hang if lines else "") + line] if line else [])


def risk_lines(result, plural: str, lang: str = "en", shown: int = 6) -> list[str]:
    """The risk of one level in a few lines: units per grade (latest year) and the red and orange warnings."""
    t = result.table
    year = t["year"].max() if t["year"].notna().any() else None
    last = t[t["year"] == year] if year is not None else t
    counts = last["grade_label"].value_counts()
    labels = [lbl for lbl in result.summary["labels"][::-1] if lbl in counts] + (["no data"] if "no data" in counts else [])
    head = (f"{plural} 风险等级 {year or ''}（{result.summary['indicator']}，{result.summary['scheme']}）：" if lang == "zh"
            else f"Risk of the {plural}, {year or ''} ({result.summary['indicator']}, {result.summary['scheme']} breaks):")
    lines = [head, *_packed([f"{lbl} {counts[lbl]}" for lbl in labels], " · ", indent="  ")]
    for level in ("red", "orange"):
        names = last.loc[last["warning"] == level].sort_values("risk_index_equal", ascending=False)["name"].astype(str).tolist()
        if names:
            items = names[:shown]
            items[0] = f"{level} {'预警' if lang == 'zh' else 'warning'}: {items[0]}"
            items[-1] += f" and {len(names) - shown} more" if len(names) > shown else ""
            lines += _packed(items, ", ", indent="  ")
    if len(last) <= shown:  # a few units: each with its indicator and warning
        for r in last.itertuples():
            lines.append(f"  {r.name} ({result.summary['indicator']} {getattr(r, result.summary['indicator']):.2f}): {r.assessment}")
    crossing = last.dropna(subset=["crossing_year"]) if "crossing_year" in last else last.iloc[:0]
    if len(crossing):
        lines.append(f"  forecast to cross the threshold by {int(crossing['crossing_year'].max())}: " + ", ".join(crossing["name"].astype(str).tolist()[:shown]))
    return lines


class StepStatus:
    """A spinner naming the step a run is in after its pass (analysis, tables): call it with each step."""

    def __init__(self, console: Console):
        self.console = console
        self._status = None

    def __call__(self, step: str) -> None:
        if self._status is None:
            self._status = self.console.status(step, spinner="dots")
            self._status.start()
        else:
            self._status.update(step)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def scale_for(values, unit: str) -> tuple[float, str]:
    """A common scale for a column: the largest of 1, 10^3, 10^6, 10^9 under which the
    largest magnitude reads >= 1 and the smallest non-zero one >= 0.1 (a 4,500 ha unit:
    4.5 kha, not 0.00 Mha), or, when both cannot hold, the largest fits in 7 digits.

    ``unit`` is ``t`` (masses: t, kt, Mt, Gt) or ``ha`` (areas: ha, kha, Mha, Gha).
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    smallest, largest = (float(v.min()), float(v.max())) if v.size else (1.0, 1.0)
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if (largest / scale >= 1 and smallest / scale >= 0.1) or largest / scale >= 1e6:
            return scale, prefix + unit
    return 1.0, unit


def _number(value: float, scale: float, largest: float) -> str:
    return f"{value / scale:,.{0 if largest / scale >= 1e4 else 1 if largest / scale >= 100 else 2}f}"


def summary_table(frame, level: str, year: str, units: str = "t C", lang: str = "en") -> Table:
    """A zonal table at a glance: area, sources, sinks, net and net per ha per unit, with
    units chosen for the column's magnitudes (said in the title) and names kept whole."""
    col = lambda base: renamed(base, units)  # noqa: E731  (net_tc -> net_tco2)
    mass = frame[[col("source_tc"), col("sink_tc"), col("net_tc")]].to_numpy()
    m_scale, m_unit = scale_for(mass, "t")
    a_scale, a_unit = scale_for(frame["area_ha"], "ha")
    mass_unit = f"{m_unit} {units.removeprefix('t ')}/yr"
    title = text("totals", lang, level=level, year=year, units=f"{a_unit}; {mass_unit}; {text('net_per_ha', lang)} {units}/ha/yr")
    table = Table(title=title, show_footer=True, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)
    table.add_column(text("unit", lang), footer=text("total", lang), no_wrap=True)
    table.add_column(text("name", lang), no_wrap=True, max_width=16, overflow="ellipsis")
    largest_area = float(frame["area_ha"].abs().max())
    table.add_column(text("area", lang), justify="right", footer=_number(frame["area_ha"].sum(), a_scale, largest_area), no_wrap=True)
    partial = bool((frame["valid_fraction"] < 0.9995).any())
    if partial:
        table.add_column(text("data", lang), justify="right", no_wrap=True)
    largest = float(np.nanmax(np.abs(mass))) if mass.size else 0.0
    for key in ("source", "sink", "net"):
        table.add_column(text(key, lang), justify="right", no_wrap=True, footer=_number(frame[col(f"{key}_tc")].sum(), m_scale, largest))
    table.add_column(text("net_per_ha", lang), justify="right", no_wrap=True)
    for row in frame.itertuples(index=False):
        r = row._asdict()
        net = r[col("net_tc")]
        cells = [str(r["unit_id"]), str(r["name"]), _number(r["area_ha"], a_scale, largest_area)]
        if partial:
            cells.append(f"{100 * r['valid_fraction']:.1f}")
        cells += [_number(r[col("source_tc")], m_scale, largest), _number(r[col("sink_tc")], m_scale, largest)]
        cells += [f"[{'red' if net > 0 else 'green'}]{_number(net, m_scale, largest)}[/]", f"{r[col('net_tc_per_ha')]:.3f}"]
        table.add_row(*cells)
    return table


def headline(summary: dict, plural: str | None, lang: str = "en") -> list[str]:
    """The run's figures as a user quotes them: totals inside the units first, the whole raster apart."""
    units = summary.get("units", "t C")
    col = lambda base: renamed(base, units)  # noqa: E731
    year = str(summary["year"]) if summary.get("year") is not None else text("undated", lang)
    unit_word = units.removeprefix("t ")
    whole = summary["whole_raster"]

    def fluxes(block: dict) -> str:
        scale, prefix = scale_for([block[col("net_tc")], block[col("source_tc")]], "t")
        fmt = lambda v: f"{v / scale:,.2f}"  # noqa: E731
        line = text("fluxes", lang, source=fmt(block[col("source_tc")]), sink=fmt(block[col("sink_tc")]), net=fmt(block[col("net_tc")]), unit=f"{prefix} {unit_word}")
        cbc = block.get("cbc_landcover", block.get("cbc"))  # "cbc" in summaries of lucr < 0.3
        return line + (text("cbc", lang, cbc=f"{cbc:.2f}") if cbc is not None else "")

    def area(ha: float) -> str:
        scale, u = scale_for([ha], "ha")
        return f"{ha / scale:,.1f} {u}"

    inside = summary.get("inside_units")
    if inside is None:
        return [text("grid_only", lang, area=area(whole["valid_area_ha"]), year=year), fluxes(whole)]
    scale, prefix = scale_for([whole[col("net_tc")]], "t")
    return [
        text("inside", lang, n=inside["units"], plural=plural or inside["level"], level=inside["level"], area=area(inside["valid_area_ha"]), year=year),
        fluxes(inside),
        text("whole", lang, area=area(whole["valid_area_ha"]), net=f"{whole[col('net_tc')] / scale:,.2f}", unit=f"{prefix} {unit_word}"),
    ]


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
        units = "t CO2" if "sequestration_tco2" in seq else "t C"
        seq = seq.rename(columns=lambda c: c.replace("tco2", "tc"))  # the same figures, read by one set of names
        scale, unit = _mass_unit(seq["sequestration_tc"].abs().max())
        t = Table(title=f"carbon stock change, {stem.removeprefix('sequestration_')} ({unit} {units.removeprefix('t ')})", header_style="bold")
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

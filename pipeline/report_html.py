"""The report a planner reads: one self-contained HTML file (images embedded, no network),
built from an output folder alone, so ``lucr report DIR`` rebuilds it from any run's outputs.

Sections: the headline totals inside the units (the whole raster apart), the risk of each
level (map, units per grade, top units, warnings, uncertainty), the net flux map, LISA
clusters, land-use classes, the coefficients with their sources (unverified ones flagged),
the rules and defaults of the risk assessment, and the run's provenance.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lucr.outputs_spec import filename

log = logging.getLogger("lucr")

REPORT = filename("report")  # report.html (lucr.outputs_spec)


def _img(png: bytes, alt: str) -> str:
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"/><figcaption>{html.escape(alt)}</figcaption></figure>'


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    shown = frame.copy()
    for c in shown.columns:
        if pd.api.types.is_float_dtype(shown[c]):
            shown[c] = [("∞" if v == np.inf else "–" if not np.isfinite(v) else f"{v:,.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}") for v in shown[c]]
    shown = shown.astype(object).where(shown.notna(), "–")
    return shown.to_html(index=False, escape=True, border=0, classes="t")


def _read(folder: Path, stem: str):
    """A table of the folder with its geometry if it has one (GeoPackage or GeoParquet), else CSV; None if absent."""
    import geopandas as gpd

    for ext in ("gpkg", "parquet", "csv"):
        path = folder / f"{stem}.{ext}"
        if not path.exists():
            continue
        if ext == "gpkg":
            return gpd.read_file(path, layer=stem)
        if ext == "parquet":
            try:
                return gpd.read_parquet(path)
            except ValueError:
                return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"unit_id": str, "parent_id": str}, encoding="utf-8-sig")
    return None


def _levels(folder: Path) -> list[str]:
    """Plural level names with risk tables, coarsest first (as the zonal tables were written)."""
    found = {p.stem.removeprefix("risk_") for p in folder.glob("risk_*.*")
             if not p.stem.endswith(("_breaks", "_forecast")) and not p.stem.startswith("risk_inventory") and p.suffix != ".tif"}
    order = json.loads((folder / "lucr_outputs.json").read_text(encoding="utf-8"))["files"] if (folder / "lucr_outputs.json").exists() else []
    ranked = [n.split(".")[0].removeprefix("zonal_") for n in order if n.startswith("zonal_")]
    return sorted(found, key=lambda p: ranked.index(p) if p in ranked else 99)


def _statistics_stems(folder: Path) -> list[str]:
    """Risk tables of the statistics route (``risk_inventory``, ``risk_inventory_provinces``)."""
    return sorted({p.stem for p in folder.glob("risk_inventory*.*") if not p.stem.endswith(("_breaks", "_forecast"))})


def build(folder: str | Path, levels: list[str] | None = None, lang: str = "en") -> str:
    """The report of an output folder, as HTML text (``levels``: plural level names, coarsest first; default
    from the manifest; ``lang``: en or zh headings and headline; figures and column names stay English).
    A statistics-only run (no land cover) gets the statistics route's headline and risk."""
    from lucr.i18n import text
    from lucr.outputs_spec import describe_files
    from lucr.report import headline

    t_ = lambda key, **kw: html.escape(text(key, lang, **kw))  # noqa: E731

    folder = Path(folder)
    summaries = sorted(folder.glob("run_summary*.json"))
    record = json.loads((folder / "run.json").read_text(encoding="utf-8")) if (folder / "run.json").exists() else {}
    statistics = _statistics_stems(folder)
    if not summaries and not statistics:
        from lucr.errors import InputFileError

        raise InputFileError("no run_summary.json and no statistics risk table: not an output folder of lucr run", path=folder, fix="give the folder a run wrote (its --out)")
    summary = json.loads(summaries[-1].read_text(encoding="utf-8")) if summaries else {}
    units = summary.get("units", record.get("config", {}).get("output", {}).get("units", "t C"))
    levels = levels or _levels(folder)
    if summary:
        sub = (f"land cover {html.escape(Path(str(summary.get('landcover', ''))).name)} ({html.escape(str(summary.get('year') or 'undated'))}), "
               f"legend {html.escape(str(summary.get('legend')))}, engine {html.escape(str(summary.get('engine')))}")
    else:
        sub = "statistics route only (no land cover)"
    body = [f"<h1>{t_('r_title')}</h1><p class='sub'>lucr {html.escape(str(record.get('lucr_version', '')))}, {html.escape(str(record.get('created', '')))}; {sub}</p>"]
    lines = headline(summary, levels[0] if levels else None, lang) if summary else []
    for stem in statistics:
        lines += _statistics_headline(_read(folder, stem), units)
    body.append(f"<h2>{t_('r_headline')}</h2><ul class='head'>" + "".join(f"<li>{html.escape(line.strip())}</li>" for line in lines) + "</ul>")
    warnings = []
    share = summary.get("unverified_share") or {}
    for side, value in share.items():
        if value and value > 0.5:
            warnings.append(f"{value:.0%} of the {side} inside the units comes from coefficients without a verified source: treat the totals as indicative.")
    for stem, title in [*((f"risk_{p}", t_("r_risk", plural=p)) for p in levels), *((s, "Risk from the statistics (seed 003 CBC)") for s in statistics)]:
        body += _risk_section(folder, stem, title, t_, warnings)
    if levels:
        body += _maps_section(folder, levels, units, t_)
    body += _change_section(folder, levels)
    stats = record.get("statistics") or {}
    if stats:
        flagged_factors = ", ".join(stats.get("not_from_papers") or []) or "none"
        body.append(f"<h2>Statistics route: factor tables</h2><p>factors <code>{html.escape(str(stats.get('factors')))}</code>, carbon-oxygen "
                    f"<code>{html.escape(str(stats.get('carbon_oxygen')))}</code>, K = {stats.get('k_tc_per_tce')} t C / tce ({html.escape(str(stats.get('energy_factor')))}); "
                    f"factors used that are literature defaults, not from a seed paper: {html.escape(flagged_factors)}. Sources: configs/inventory/.</p>"
                    + "".join(f"<p class='sub'>{html.escape(str(n))}</p>" for n in stats.get("notes") or []))
    legend = _read(folder, "legend")
    if legend is not None:
        flagged = legend.assign(
            status=[f"⚠ {s}" if s == "unverified" else s for s in legend["status"]],
            ref=[r if len(str(r)) <= 180 else str(r)[:177] + "…" for r in legend["ref"].fillna("")],
        )
        low = next((c for c in legend.columns if c.startswith("coef_low_")), None)
        if low is not None:  # one readable column: the Monte Carlo range and where it comes from
            high, sd = low.replace("_low_", "_high_"), low.replace("_low_", "_sd_")
            flagged.insert(4, "Monte Carlo range", [
                (f"sd {d:.4g}" if np.isfinite(d) else f"{lo:.4g} to {hi:.4g}") + f" ({str(src)[:90]})"
                for lo, hi, d, src in zip(legend[low], legend[high], legend[sd].astype(float), legend["range_source"])])
            flagged = flagged.drop(columns=[low, high, sd, "range_source"])
        body.append(f"<h2>{t_('r_coefs')}</h2><p>{t_('r_coef_note')}</p>" + _table(pd.DataFrame(flagged), digits=4))
    body.append(f"<h2>{t_('r_warnings')}</h2>" + ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings else f"<p>{t_('r_none')}</p>"))
    body.append(_methods(t_("r_methods")))
    files = record.get("outputs") or sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    described = describe_files(files)
    if described:
        body.append("<h2>Files of this run</h2>" + _table(pd.DataFrame(described, columns=["output", "content", "files"]))
                    + "<p class='sub'>Columns, units and meanings: docs/output_columns.md, and the column descriptions inside each GeoPackage and Parquet file.</p>")
    if record:
        inputs = pd.DataFrame(record.get("inputs", []))
        body.append(f"<h2>{t_('r_provenance')}</h2>" + (_table(inputs[[c for c in ("path", "bytes", "sha256") if c in inputs]]) if len(inputs) else "")
                    + f"<p>packages: {html.escape(', '.join(f'{k} {v}' for k, v in record.get('packages', {}).items()))}</p>")
    return _page("\n".join(body), lang)


def _statistics_headline(table: pd.DataFrame | None, units: str) -> list[str]:
    """One line per unit (up to 5) of the statistics route's last year: release, fixation, CBC, OBC, grade."""
    from lucr.report import scale_for

    if table is None or not len(table):
        return []
    last = table[table["year"] == table["year"].max()].sort_values("risk_index_equal", ascending=False)
    scale, prefix = scale_for([*last["source"], *last["sink"]], "t")
    unit_word = units.removeprefix("t ")
    out = []
    for r in last.head(5).itertuples():
        obc = f", OBC {r.obc:.2f}" if "obc" in last and np.isfinite(getattr(r, "obc", np.nan)) else ""
        out.append(f"{r.name} {int(r.year)} (statistics): human release {r.source / scale:,.2f} {prefix} {unit_word}, ecosystem fixation "
                   f"{r.sink / scale:,.2f} {prefix} {unit_word}, CBC {r.cbc:.2f}{obc}: {r.grade_label}, {r.warning} warning.")
    return out


def _risk_section(folder: Path, stem: str, title: str, t_, warnings: list[str]) -> list[str]:
    """Grade map, units per grade, top units, grade probabilities, series with forecasts and LISA of one risk table."""
    from lucr import figures
    from lucr.config import RiskConfig

    t = _read(folder, stem)
    if t is None or not len(t):
        return []
    plural = stem.removeprefix("risk_")
    breaks = _read(folder, f"{stem}_breaks")
    run_cfg = json.loads((folder / "run.json").read_text(encoding="utf-8")).get("config", {}) if (folder / "run.json").exists() else {}
    risk_cfg = RiskConfig(**{k: v for k, v in (run_cfg.get("risk") or {}).items() if k in RiskConfig.model_fields and k != "uncertainty"})
    labels = list(risk_cfg.labels)
    year = t["year"].max() if "year" in t and t["year"].notna().any() else None
    last = t[t["year"] == year] if year is not None else t
    out = [f"<h2>{title}{f', {int(year)}' if year is not None else ''}</h2>"]
    if breaks is not None and len(breaks):
        b = breaks.iloc[-1]
        bounds = [b[c] for c in breaks.columns if c.startswith("break_")]
        out.append(f"<p>{html.escape(str(b['indicator']))} graded by {html.escape(str(b['scheme']))} breaks "
                   f"{', '.join(f'{v:g}' for v in bounds)} (fitted on {html.escape(str(b['fitted_on']))}).</p>")
    if hasattr(last, "geometry") and last.geometry.notna().any():
        out.append(_img(figures.grade_map(last, labels, f"risk grade of the {plural} ({risk_cfg.indicator})"), f"risk grade of the {plural}"))
    counts = last["grade_label"].value_counts().reindex([*labels[::-1], "no data"]).dropna().astype(int)
    out.append("<p>" + " · ".join(f"{html.escape(k)}: {v}" for k, v in counts.items()) + "</p>")
    top = last.sort_values("risk_index_equal", ascending=False).head(12)
    cols = [c for c in ("name", "unit_id", "cbc", "cbc_p5", "cbc_p95", "p_cbc_ge_1", "obc", "grade_label", "warning", "crossing_year", "assessment") if c in top and top[c].notna().any()]
    out.append(f"<h3>{t_('r_top')}</h3>" + _table(pd.DataFrame(top[cols])))
    for level in ("red", "orange"):
        names = last.loc[last["warning"] == level, "name"].astype(str).tolist()
        if names:
            warnings.append(f"{level} warning ({plural}): {', '.join(names[:20])}{' and more' if len(names) > 20 else ''}")
    crossing = last[last["crossing_year"].notna()] if "crossing_year" in last else last.iloc[:0]
    for r in crossing.itertuples():
        confidence = " (low confidence: GM(1,1) fit " + str(r.forecast_grade) + ")" if getattr(r, "low_confidence", False) else ""
        warnings.append(f"{r.name}: forecast to cross the threshold {risk_cfg.risk_threshold:g} in {int(r.crossing_year)}{confidence}.")
    if "p_grade_1" in last and last["p_grade_1"].notna().any():
        out.append(_img(figures.grade_probability_bars(pd.DataFrame(last), labels, f"grade probabilities, {plural} at highest risk"), f"grade probabilities of the {plural}"))
    forecast = _read(folder, f"{stem}_forecast")
    if forecast is not None and len(forecast):
        out.append(_img(figures.forecast_series(pd.DataFrame(forecast), pd.DataFrame(t), risk_cfg.indicator, risk_cfg.risk_threshold, risk_cfg.warning_year,
                                                f"{risk_cfg.indicator.upper() if risk_cfg.indicator == 'cbc' else risk_cfg.indicator}: observed, GM(1,1) and ensemble forecasts"),
                        f"{risk_cfg.indicator} series and forecasts of the {plural}"))
    lisa = _read(folder, f"analysis_{plural}_lisa")
    if lisa is not None and hasattr(lisa, "geometry") and "cluster" in lisa:
        cbc = next((v for v in ("cbc_landcover", "cbc") if (lisa["variable"] == v).any()), lisa["variable"].iloc[0])
        part = lisa[lisa["variable"] == cbc]
        if "year" in part and part["year"].notna().any():
            part = part[part["year"] == part["year"].max()]
        out.append(_img(figures.lisa_map(part, f"LISA clusters of {part['variable'].iloc[0]}, {plural}"), f"LISA clusters, {plural}"))
    return out


def _maps_section(folder: Path, levels: list[str], units: str, t_) -> list[str]:
    """The net flux density map with the unit borders, and the class areas of the largest units."""
    from lucr import figures

    out = []
    maps = sorted(folder.glob("carbon_balance*.tif"))
    if maps:
        import rasterio

        with rasterio.open(maps[-1]) as src:
            f = max(1, int(np.ceil(max(src.width, src.height) / 1200)))
            net = src.read(3, out_shape=(max(1, src.height // f), max(1, src.width // f))).astype(float)
            b = src.bounds
            unit = src.tags(3).get("units", f"{units} / ha / yr")
            crs = src.crs
        borders = _zonal_last(folder, levels[0])
        borders = borders if borders is not None and hasattr(borders, "geometry") else None
        out.append(f"<h2>{t_('r_flux')}</h2>" + _img(figures.flux_map(net, (b.left, b.right, b.bottom, b.top), borders if borders is None else borders.to_crs(crs), unit, "net flux density (symmetric log scale)", crs=crs), "net flux density map"))
    zonal = _zonal_last(folder, levels[0])
    legend = _read(folder, "legend")
    if zonal is not None and legend is not None:
        names = dict(zip(legend["code"].astype(int), legend["name"].astype(str)))
        out.append(f"<h2>{t_('r_land')}</h2>" + _img(figures.class_area_bars(pd.DataFrame(zonal), names, f"class areas of the largest {levels[0]}"), "class areas"))
    return out


def _zonal_last(folder: Path, plural: str):
    """The zonal table of a level (of the last date in a multi-date run)."""
    dated = sorted(folder.glob(f"zonal_{plural}_[0-9]*.*"))
    return _read(folder, dated[-1].stem) if dated else _read(folder, f"zonal_{plural}")


def _change_section(folder: Path, levels: list[str]) -> list[str]:
    """Transition matrices of the units that changed most, and the centre of gravity's track."""
    from lucr import figures

    out = []
    legend = _read(folder, "legend")
    names = dict(zip(legend["code"].astype(int), legend["name"].astype(str))) if legend is not None else {}
    for plural in levels:
        transitions = _read(folder, f"transitions_{plural}")
        if transitions is not None and len(transitions):
            out.append(f"<h2>Land-use change of the {html.escape(plural)}</h2>")
            out.append(_img(figures.transition_matrices(pd.DataFrame(transitions), names, f"transitions {int(transitions['year_from'].min())} -> {int(transitions['year_to'].max())}, {plural} that changed most"),
                            f"transition matrices of the {plural}"))
        centres = _read(folder, f"analysis_{plural}_gravity")
        if centres is not None and hasattr(centres, "geometry") and centres["year"].nunique() > 1:
            borders = _zonal_last(folder, plural)
            borders = borders.to_crs(centres.crs) if borders is not None and hasattr(borders, "geometry") else None
            track = _read(folder, f"analysis_{plural}_gravity_track")
            out.append(_img(figures.gravity_track(centres, borders, f"centre of gravity of the {plural}, {int(centres['year'].min())}-{int(centres['year'].max())}", track),
                            f"centre of gravity track of the {plural}"))
    return out


def _methods(heading: str) -> str:
    from lucr.analysis.risk import CBC_BREAKS
    from lucr.config import RiskConfig

    d = RiskConfig()
    rules = [
        "CBC = source / |sink| of each unit (coefficient method, docs/methods.md §2; risk rules and the reason for each default: §12). Seed 000 gives no numbers: every value below is a configurable default (risk: in the config).",
        f"Grades by fixed CBC breaks {', '.join(f'{b:g}' for b in CBC_BREAKS)}: 1 is the net-zero line, 3 seed 003's rule that ecosystems fix at least a third of emissions; a value on a break takes the higher grade.",
        f"Warnings: yellow, orange, red for grades 3-5; blue for a weak sink within {d.warning_margin:g} of the line; forecast crossings by {d.warning_year} from the ensemble of GM(1,1), linear and growth (4 or more years), low confidence when GM(1,1) fits 'barely' or 'unqualified'.",
        "Spatial type from LISA: HH aggregated risk, LL aggregated low risk, HL/LH transitional, not significant dispersed.",
        f"Balance and temporal types from Sen's slope and Mann-Kendall (alpha {d.trend_alpha:g}); long-term: {d.long_term_years} or more consecutive years over the threshold, or a significant rising trend.",
        "Risk index: exposure (log CBC), sensitivity (the mean of the known change components: the net trend, Sen's slope over its mean; the dynamic degree; "
        "the built-up expansion), adaptive capacity (sink share), min-max normalised, equal and entropy weights; every component is a column of the risk table.",
        f"Uncertainty (land-cover route): {d.uncertainty.draws} Monte Carlo draws of the class coefficients on the cross-tabs (no raster re-read): the range or standard "
        "deviation of the coefficient table where it gives one (with its source; the forest range from Fang et al. 2007), else an assumed "
        "half-width by status (" + ", ".join(f"{k} {v:.0%}" for k, v in d.uncertainty.relative.items()) + "), see range_source in the legend table; "
        "5/50/95 % of source, sink, net and CBC, and the probability of each grade and of CBC >= 1 and >= 3.",
        "Driver type (multi-date land-cover runs) from the transitions of the first -> last date: the category of the transitions that release most carbon (stock lost with "
        "pools, else the change of the annual flux): urban expansion, industry/mining (where the legend names it), agricultural, natural "
        "background (between natural classes, or no change), restoration (no transition released carbon).",
        "The statistics route is graded on seed 003's CBC: human release / ecosystem fixation (not the land-cover CBC).",
    ]
    return f"<h2>{heading}</h2><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in rules) + "</ul>"


def _page(body: str, lang: str = "en") -> str:
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width"/>
<title>lucr report</title>
<style>
body{{font-family:"Noto Sans CJK SC","Noto Sans",sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}}
h1{{font-size:1.6em;margin-bottom:.2em}} h2{{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}}
.sub{{color:#666}} figure{{margin:1em 0}} img{{max-width:100%}} figcaption{{color:#666;font-size:.85em}}
table.t{{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto}} table.t td,table.t th{{border-bottom:1px solid #e3e3e3;padding:.25em .6em;text-align:left}}
ul.head li{{font-size:1.05em;margin:.2em 0}}
</style></head>
<body>
{body}
<script>
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) {{ return i.complete && i.naturalWidth > 0; }});
  document.body.setAttribute("data-images", imgs.length + (ok ? " loaded" : " broken"));
}});
</script>
</body></html>
"""


def write(folder: str | Path, dest: str | Path | None = None, levels: list[str] | None = None, lang: str = "en") -> Path:
    """Build the report of ``folder`` and write it (default ``folder/report.html``)."""
    path = Path(dest) if dest is not None else Path(folder) / REPORT
    path.write_text(build(folder, levels, lang), encoding="utf-8")
    return path

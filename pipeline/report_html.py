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

log = logging.getLogger("lucr")

REPORT = "report.html"


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
    found = {p.stem.removeprefix("risk_") for p in folder.glob("risk_*.*") if not p.stem.endswith("_breaks")}
    order = json.loads((folder / "lucr_outputs.json").read_text(encoding="utf-8"))["files"] if (folder / "lucr_outputs.json").exists() else []
    ranked = [n.split(".")[0].removeprefix("zonal_") for n in order if n.startswith("zonal_")]
    return sorted(found, key=lambda p: ranked.index(p) if p in ranked else 99)


def build(folder: str | Path, levels: list[str] | None = None, lang: str = "en") -> str:
    """The report of an output folder, as HTML text (``levels``: plural level names, coarsest first; default
    from the manifest; ``lang``: en or zh headings and headline; figures and column names stay English)."""
    from lucr import figures
    from lucr.i18n import text
    from lucr.report import headline

    t_ = lambda key, **kw: html.escape(text(key, lang, **kw))  # noqa: E731

    folder = Path(folder)
    summaries = sorted(folder.glob("run_summary*.json"))
    if not summaries:
        from lucr.errors import InputFileError

        raise InputFileError("no run_summary.json: not an output folder of lucr run", path=folder, fix="give the folder a run wrote (its --out)")
    summary = json.loads(summaries[-1].read_text(encoding="utf-8"))
    record = json.loads((folder / "run.json").read_text(encoding="utf-8")) if (folder / "run.json").exists() else {}
    units = summary.get("units", "t C")
    levels = levels or _levels(folder)
    body = [f"<h1>{t_('r_title')}</h1><p class='sub'>lucr {html.escape(str(record.get('lucr_version', '')))}, "
            f"{html.escape(str(record.get('created', '')))}; land cover {html.escape(Path(str(summary.get('landcover', ''))).name)} "
            f"({html.escape(str(summary.get('year') or 'undated'))}), legend {html.escape(str(summary.get('legend')))}, engine {html.escape(str(summary.get('engine')))}</p>"]
    body.append(f"<h2>{t_('r_headline')}</h2><ul class='head'>" + "".join(f"<li>{html.escape(line.strip())}</li>" for line in headline(summary, levels[0] if levels else None, lang)) + "</ul>")
    warnings = []
    share = summary.get("unverified_share") or {}
    for side, value in share.items():
        if value and value > 0.5:
            warnings.append(f"{value:.0%} of the {side} inside the units comes from coefficients without a verified source: treat the totals as indicative.")
    for plural in levels:
        t = _read(folder, f"risk_{plural}")
        if t is None or not len(t):
            continue
        year = t["year"].max() if "year" in t and t["year"].notna().any() else None
        last = t[t["year"] == year] if year is not None else t
        labels = [lbl for lbl in ("strong sink", "weak sink", "moderate risk", "high risk", "severe risk")]
        body.append(f"<h2>{t_('r_risk', plural=plural)}{f', {int(year)}' if year is not None else ''}</h2>")
        if hasattr(last, "geometry") and last.geometry.notna().any():
            body.append(_img(figures.grade_map(last, labels, f"risk grade of the {plural} (CBC)"), f"risk grade of the {plural}"))
        counts = last["grade_label"].value_counts().reindex([*labels[::-1], "no data"]).dropna().astype(int)
        body.append("<p>" + " · ".join(f"{html.escape(k)}: {v}" for k, v in counts.items()) + "</p>")
        top = last.sort_values("risk_index_equal", ascending=False).head(12)
        cols = [c for c in ("name", "unit_id", "cbc", "cbc_p5", "cbc_p95", "p_cbc_ge_1", "grade_label", "warning", "spatial_type", "temporal_type", "balance_type") if c in top]
        body.append(f"<h3>{t_('r_top')}</h3>" + _table(pd.DataFrame(top[cols])))
        red = last.loc[last["warning"] == "red", "name"].astype(str).tolist()
        if red:
            warnings.append(f"red warning ({plural}): {', '.join(red[:20])}{' and more' if len(red) > 20 else ''}")
        if "p_grade_1" in last and last["p_grade_1"].notna().any():
            body.append(_img(figures.grade_probability_bars(pd.DataFrame(last), labels, f"grade probabilities, {plural} at highest risk"), f"grade probabilities of the {plural}"))
        lisa = _read(folder, f"analysis_{plural}_lisa")
        if lisa is not None and hasattr(lisa, "geometry") and "cluster" in lisa:
            part = lisa[lisa["variable"] == "cbc"] if (lisa["variable"] == "cbc").any() else lisa[lisa["variable"] == lisa["variable"].iloc[0]]
            if "year" in part and part["year"].notna().any():
                part = part[part["year"] == part["year"].max()]
            body.append(_img(figures.lisa_map(part, f"LISA clusters of {part['variable'].iloc[0]}, {plural}"), f"LISA clusters, {plural}"))
    maps = sorted(folder.glob("carbon_balance*.tif"))
    if maps:
        import rasterio

        with rasterio.open(maps[-1]) as src:
            f = max(1, int(np.ceil(max(src.width, src.height) / 1200)))
            net = src.read(3, out_shape=(max(1, src.height // f), max(1, src.width // f))).astype(float)
            b = src.bounds
            unit = src.tags(3).get("units", f"{units} / ha / yr")
            crs = src.crs
        borders = _read(folder, f"zonal_{levels[0]}") if levels else None
        borders = borders if borders is not None and hasattr(borders, "geometry") else None
        body.append(f"<h2>{t_('r_flux')}</h2>" + _img(figures.flux_map(net, (b.left, b.right, b.bottom, b.top), borders if borders is None else borders.to_crs(crs), unit, "net flux density (symmetric log scale)", crs=crs), "net flux density map"))
    if levels:
        zonal = _read(folder, f"zonal_{levels[0]}")
        legend = _read(folder, "legend")
        if zonal is not None and legend is not None:
            names = dict(zip(legend["code"].astype(int), legend["name"].astype(str)))
            body.append(f"<h2>{t_('r_land')}</h2>" + _img(figures.class_area_bars(pd.DataFrame(zonal), names, f"class areas of the largest {levels[0]}"), "class areas"))
    legend = _read(folder, "legend")
    if legend is not None:
        flagged = legend.assign(
            status=[f"⚠ {s}" if s == "unverified" else s for s in legend["status"]],
            ref=[r if len(str(r)) <= 180 else str(r)[:177] + "…" for r in legend["ref"].fillna("")],
        )
        body.append(f"<h2>{t_('r_coefs')}</h2><p>{t_('r_coef_note')}</p>" + _table(pd.DataFrame(flagged), digits=4))
    body.append(f"<h2>{t_('r_warnings')}</h2>" + ("<ul>" + "".join(f"<li>{html.escape(w)}</li>" for w in warnings) + "</ul>" if warnings else f"<p>{t_('r_none')}</p>"))
    body.append(_methods(t_("r_methods")))
    if record:
        inputs = pd.DataFrame(record.get("inputs", []))
        body.append(f"<h2>{t_('r_provenance')}</h2>" + (_table(inputs[[c for c in ("path", "bytes", "sha256") if c in inputs]]) if len(inputs) else "")
                    + f"<p>packages: {html.escape(', '.join(f'{k} {v}' for k, v in record.get('packages', {}).items()))}</p>")
    return _page("\n".join(body), lang)


def _methods(heading: str) -> str:
    from lucr.analysis.risk import CBC_BREAKS
    from lucr.config import RiskConfig

    d = RiskConfig()
    rules = [
        "CBC = source / |sink| of each unit (coefficient method; methods.md §5). Seed 000 gives no numbers: every value below is a configurable default (risk: in the config).",
        f"Grades by fixed CBC breaks {', '.join(f'{b:g}' for b in CBC_BREAKS)}: 1 is the net-zero line, 3 seed 003's rule that ecosystems fix at least a third of emissions; a value on a break takes the higher grade.",
        f"Warnings: yellow, orange, red for grades 3-5; blue for a weak sink within {d.warning_margin:g} of the line; forecast crossings by {d.warning_year} from the ensemble of GM(1,1), linear and growth (4 or more years), low confidence when GM(1,1) fits 'barely' or 'unqualified'.",
        "Spatial type from LISA: HH aggregated risk, LL aggregated low risk, HL/LH transitional, not significant dispersed.",
        f"Balance and temporal types from Sen's slope and Mann-Kendall (alpha {d.trend_alpha:g}); long-term: {d.long_term_years} or more consecutive years over the threshold, or a significant rising trend.",
        "Risk index: exposure (log CBC), sensitivity (Sen's slope of the net over its mean), adaptive capacity (sink share), min-max normalised, equal and entropy weights.",
        f"Uncertainty: {d.uncertainty.draws} Monte Carlo draws of the coefficients (triangular, half-widths by status: "
        + ", ".join(f"{k} {v:.0%}" for k, v in d.uncertainty.relative.items()) + " — assumed, no source gives ranges), on the cross-tabs; 5/50/95 % and grade probabilities.",
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
table.t{{border-collapse:collapse;font-size:.85em}} table.t td,table.t th{{border-bottom:1px solid #e3e3e3;padding:.25em .6em;text-align:left}}
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

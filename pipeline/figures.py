"""Figures of the report (matplotlib, no display): each function takes outputs of a run and
returns PNG bytes. Maps carry a legend, a scale bar and a north arrow; Chinese names need a
CJK font (Debian's ``fonts-noto-cjk``; :func:`cjk_font` says when none is found).
"""

from __future__ import annotations

import io
import logging
import math

import numpy as np

log = logging.getLogger("lucr")

#: grade colours, strong sink (green) ... severe risk (red); ColorBrewer RdYlGn, reversed
GRADE_COLOURS = ("#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027")
LISA_COLOURS = {"HH": "#d7191c", "LL": "#2c7bb6", "HL": "#fdae61", "LH": "#abd9e9", "not significant": "#eeeeee"}


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Source Han Sans SC")


def cjk_font() -> str | None:
    """The name of an installed CJK font for matplotlib (Noto Sans CJK, WenQuanYi, ...), or None.

    Fonts installed after matplotlib built its font cache are not in it: they are looked up
    in the system font folders and added.
    """
    from pathlib import Path

    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    if known() is None:
        for folder in ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"), "/Library/Fonts", "C:/Windows/Fonts"):
            for path in sorted(Path(folder).glob("**/*")) if Path(folder).is_dir() else []:
                if path.suffix.lower() in (".ttc", ".ttf", ".otf") and any(k in path.name.lower() for k in ("cjk", "wqy", "simhei", "sourcehan")):
                    try:
                        font_manager.fontManager.addfont(str(path))
                    except (OSError, RuntimeError, ValueError):
                        continue
    font = known()
    if font is None:
        log.warning("no CJK font found: Chinese names in the figures show as boxes (install fonts-noto-cjk)")
    return font


def _setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    plt.rcParams["font.sans-serif"] = ([font] if font else []) + ["DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _map_furniture(ax, frame) -> None:
    """North arrow and a scale bar (km, from the map's CRS at its centre latitude)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.annotate("N", xy=(0.95, 0.93), xytext=(0.95, 0.80), xycoords="axes fraction", ha="center", va="center", fontsize=11, fontweight="bold",
                arrowprops=dict(arrowstyle="-|>", color="black", lw=1.5))
    crs = getattr(frame, "crs", None)
    if crs is None:
        return
    import pyproj

    crs = pyproj.CRS.from_user_input(crs)  # rasterio's CRS too
    if crs.is_geographic:
        km_per_unit = 111.32 * math.cos(math.radians(max(-89.0, min(89.0, (y0 + y1) / 2))))
    else:
        km_per_unit = (crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0) / 1000.0
    width_km = (x1 - x0) * km_per_unit
    if not (math.isfinite(width_km) and width_km > 0):
        return
    nice = 10 ** math.floor(math.log10(width_km / 5))
    length_km = next(m * nice for m in (5, 2, 1) if m * nice <= width_km / 4)
    length = length_km / km_per_unit
    xs, ys = x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([xs, xs + length], [ys, ys], color="black", lw=3, solid_capstyle="butt")
    ax.text(xs + length / 2, ys + 0.02 * (y1 - y0), f"{length_km:g} km", ha="center", va="bottom", fontsize=8)



def grade_map(frame, labels: list[str], title: str) -> bytes:
    """Choropleth of the risk grade (``grade`` 1..5, 0 no data) of one level and year."""
    plt = _setup()
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8, 6))
    colours = ["#bdbdbd", *GRADE_COLOURS[: len(labels)]]
    frame = frame.copy()
    frame["_c"] = [colours[int(g)] if 0 <= int(g) < len(colours) else "#bdbdbd" for g in frame["grade"]]
    frame.plot(ax=ax, color=frame["_c"], edgecolor="#555555", linewidth=0.2)
    handles = [Patch(facecolor=colours[i + 1], edgecolor="#555555", label=f"{i + 1} {lbl}") for i, lbl in enumerate(labels)]
    if (frame["grade"] == 0).any():
        handles.append(Patch(facecolor=colours[0], edgecolor="#555555", label="no data"))
    ax.legend(handles=handles, loc="lower right", fontsize=8, title="grade", title_fontsize=8, frameon=True)
    ax.set_title(title, fontsize=11)
    _map_furniture(ax, frame)
    return _png(fig)


def flux_map(net: np.ndarray, extent, borders, unit: str, title: str, crs=None) -> bytes:
    """Net flux density (a decimated band of the carbon map), diverging at zero on a symmetric log scale, with unit borders."""
    plt = _setup()
    from matplotlib.colors import SymLogNorm

    fig, ax = plt.subplots(figsize=(8, 6))
    finite = net[np.isfinite(net)]
    vmax = float(np.nanmax(np.abs(finite))) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(net), extent=extent, cmap="RdYlGn_r", norm=SymLogNorm(linthresh=0.1, vmin=-vmax, vmax=vmax), interpolation="nearest")
    if borders is not None:
        borders.boundary.plot(ax=ax, color="#333333", linewidth=0.3)
    cbar = fig.colorbar(image, ax=ax, shrink=0.7)
    cbar.set_label(f"net flux density, {unit} (sources > 0)")
    ax.set_title(title, fontsize=11)
    if borders is None and crs is not None:
        import types

        borders = types.SimpleNamespace(crs=crs)
    _map_furniture(ax, borders if borders is not None else object())
    return _png(fig)


def lisa_map(frame, title: str) -> bytes:
    """LISA clusters of one variable and year."""
    plt = _setup()
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(8, 6))
    colours = [LISA_COLOURS.get(str(c), "#eeeeee") for c in frame["cluster"]]
    frame.plot(ax=ax, color=colours, edgecolor="#777777", linewidth=0.2)
    present = [c for c in LISA_COLOURS if (frame["cluster"] == c).any()]
    ax.legend(handles=[Patch(facecolor=LISA_COLOURS[c], edgecolor="#777777", label=c) for c in present], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=11)
    _map_furniture(ax, frame)
    return _png(fig)


def grade_probability_bars(table, labels: list[str], title: str, top: int = 15) -> bytes:
    """Stacked bars of the Monte Carlo grade probabilities of the ``top`` units by risk index."""
    plt = _setup()
    t = table.sort_values("risk_index_equal", ascending=False).head(top)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(t) + 1.2))
    left = np.zeros(len(t))
    for j, lbl in enumerate(labels, start=1):
        p = t[f"p_grade_{j}"].fillna(0).to_numpy()
        ax.barh(t["name"].astype(str), p, left=left, color=GRADE_COLOURS[j - 1], label=lbl)
        left += p
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability (Monte Carlo over the coefficients)")
    ax.legend(ncol=len(labels), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(t) > 5 else -0.4))
    ax.set_title(title, fontsize=11)
    return _png(fig)


def class_area_bars(frame, names: dict, title: str, top: int = 12) -> bytes:
    """Stacked bars of class areas (ha, thousand ha or Mha) of the ``top`` largest units."""
    plt = _setup()
    cols = [c for c in frame.columns if c.startswith("area_ha_class_")]
    t = frame.sort_values("area_ha", ascending=False).head(top)
    scale, unit_label = _area_scale(t["area_ha"].to_numpy(float))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(t) + 1.2))
    left = np.zeros(len(t))
    cmap = plt.get_cmap("tab20")
    for i, c in enumerate(cols):
        v = t[c].to_numpy(float) / scale
        if v.sum() <= 0:
            continue
        code = int(c.removeprefix("area_ha_class_"))
        ax.barh(t["name"].astype(str), v, left=left, color=cmap(i % 20), label=names.get(code, str(code)))
        left += v
    ax.invert_yaxis()
    ax.set_xlabel(f"area, {unit_label}")
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(title, fontsize=11)
    return _png(fig)


def _area_scale(values) -> tuple[float, str]:
    """Divisor and label that keep areas readable (ha, thousand ha, Mha)."""
    top = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    return (1e6, "Mha") if top >= 1e6 else (1e3, "thousand ha") if top >= 1e4 else (1.0, "ha")


def forecast_series(forecast, risk, indicator: str, threshold: float, warning_year: int, title: str, top: int = 6) -> bytes:
    """Small multiples of the indicator's series per unit: observed points, the GM(1,1) fit and
    forecast, the ensemble forecast, and the band between the lowest and highest of the three
    methods (GM(1,1), linear, growth); the risk threshold and the warning year as lines.

    ``forecast``: the ``risk_*_forecast`` table; ``risk``: the risk table (units ranked by the
    risk index of their last year, units forecast to cross the threshold first)."""
    plt = _setup()
    last = risk[risk["year"] == risk["year"].max()]
    ranked = last.assign(_cross=last["crossing_year"].notna()).sort_values(["_cross", "risk_index_equal"], ascending=False)
    units = [u for u in ranked["unit_id"].astype(str) if u in set(forecast["unit_id"].astype(str))][:top]
    names = dict(zip(last["unit_id"].astype(str), last["name"].astype(str)))
    n = max(1, len(units))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.6 * cols, 6.5), 2.9 * rows + 0.6), squeeze=False)
    f = forecast.assign(unit_id=forecast["unit_id"].astype(str))
    for ax, unit in zip(axes.flat, units):
        part = f[f["unit_id"] == unit]
        obs = part[part["method"] == "observed"]
        ahead = part[part["kind"] == "forecast"]
        members = ahead[ahead["method"].isin(["gm11", "linear", "growth"])].pivot(index="year", columns="method", values="value")
        if len(members):
            ax.fill_between(members.index, members.min(axis=1), members.max(axis=1), color="#9ecae1", alpha=0.5, lw=0, label="range of the 3 methods")
        gm = part[part["method"] == "gm11"].sort_values("year")
        ax.plot(gm["year"], gm["value"], color="#3182bd", lw=1.2, label="GM(1,1) fit and forecast")
        ens = ahead[ahead["method"] == "ensemble"].sort_values("year")
        ax.plot(ens["year"], ens["value"], color="#08519c", lw=1.2, ls="--", label="ensemble forecast")
        ax.plot(obs["year"], obs["value"], "o", ms=3, color="black", label="observed")
        ax.axhline(threshold, color="#d73027", lw=0.8, label=f"threshold {threshold:g}")
        ax.axvline(warning_year, color="#777777", lw=0.6, ls=":")
        ax.set_title(names.get(unit, unit), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(units):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title, fontsize=11)
    fig.supylabel(indicator, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return _png(fig)


def transition_matrices(transitions, names: dict, title: str, top: int = 4) -> bytes:
    """Heat maps of the transition matrix (area moved from each class to each, first -> last date)
    of the ``top`` units with the most changed land; the diagonal (unchanged land) greyed out."""
    plt = _setup()
    from matplotlib.colors import LogNorm

    first, last = transitions["year_from"].min(), transitions["year_to"].max()
    t = transitions[(transitions["year_from"] == first) & (transitions["year_to"] == last)]
    changed = t[t["class_from"] != t["class_to"]].groupby("unit_id")["area_ha"].sum().sort_values(ascending=False)
    units = list(changed.index[:top]) or list(t["unit_id"].unique()[:1])
    codes = sorted(set(t["class_from"]) | set(t["class_to"]))
    cols = min(2, len(units))
    rows = math.ceil(len(units) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols + 1.0, 4.2 * rows), squeeze=False, layout="constrained")
    off = t.loc[t["class_from"] != t["class_to"], "area_ha"]
    norm = LogNorm(vmin=max(float(off[off > 0].min()) if (off > 0).any() else 1.0, 1e-3), vmax=max(float(off.max()) if len(off) else 1.0, 1e-3))
    scale, unit_label = _area_scale(off.to_numpy(float))
    image = None
    label_of = {c: str(names.get(int(c), c))[:14] for c in codes}
    for ax, unit in zip(axes.flat, units):
        part = t[t["unit_id"] == unit]
        m = np.full((len(codes), len(codes)), np.nan)
        for r in part.itertuples():
            m[codes.index(r.class_from), codes.index(r.class_to)] = r.area_ha
        diagonal = np.eye(len(codes), dtype=bool)
        image = ax.imshow(np.ma.masked_where(diagonal | ~(m > 0), m), cmap="YlOrRd", norm=norm)
        ax.imshow(np.ma.masked_where(~diagonal, np.ones_like(m)), cmap="Greys", vmin=0, vmax=4)
        for i in range(len(codes)):
            for j in range(len(codes)):
                if i != j and m[i, j] > 0:
                    v = m[i, j] / scale
                    dark = norm(m[i, j]) > 0.6
                    ax.text(j, i, f"{v:,.0f}" if v >= 100 else f"{v:,.3g}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
        ax.set_xticks(range(len(codes)), [label_of[c] for c in codes], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(codes)), [label_of[c] for c in codes], fontsize=7)
        ax.set_xlabel(f"class in {last}", fontsize=8)
        ax.set_ylabel(f"class in {first}", fontsize=8)
        name = part["name"].iloc[0] if "name" in part and len(part) else unit
        moved = changed.get(unit, 0.0) / scale
        ax.set_title(f"{name}: {moved:,.0f} {unit_label} changed" if moved >= 100 else f"{name}: {moved:,.3g} {unit_label} changed", fontsize=9)
    for ax in list(axes.flat)[len(units):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="area moved, ha")
    fig.suptitle(f"{title} (numbers in {unit_label})", fontsize=11)
    return _png(fig)


def gravity_track(centres, borders, title: str, track=None) -> bytes:
    """The centre of gravity of each variable per year, joined in time order over the unit borders;
    zoomed to the tracks (a centre moves far less than a unit is wide), with each track's length
    and direction from ``track`` (the ``gravity_track`` table) in the legend."""
    plt = _setup()
    fig, ax = plt.subplots(figsize=(8, 6))
    if borders is not None:
        borders.plot(ax=ax, color="#f4f4f4", edgecolor="#999999", linewidth=0.6)
    colours = plt.get_cmap("tab10")
    xs, ys = [], []
    for i, (variable, part) in enumerate(centres.groupby("variable", sort=False)):
        part = part.sort_values("year")
        x, y = part.geometry.x.to_numpy(), part.geometry.y.to_numpy()
        label = str(variable)
        if track is not None and len(track):
            moved = track[track["variable"] == variable]
            if len(moved):
                label += f": {moved['cumulative_km'].iloc[-1]:,.2f} km, mostly {moved.loc[moved['distance_km'].idxmax(), 'direction']}"
        ax.plot(x, y, "-", color=colours(i), lw=1.2, label=label)
        ax.scatter(x, y, color=colours(i), s=14, zorder=3)
        for j in range(len(x) - 1):
            ax.annotate("", xy=(x[j + 1], y[j + 1]), xytext=(x[j], y[j]), arrowprops=dict(arrowstyle="->", color=colours(i), lw=1.2))
        for k in sorted({0, len(x) - 1}):  # the first and last year (the steps between are often too close to label)
            ax.annotate(str(int(part["year"].iloc[k])), (x[k], y[k]), textcoords="offset points", xytext=(5, -10 if k == 0 else 5), fontsize=7, color=colours(i))
        xs += list(x)
        ys += list(y)
    span = max(np.ptp(xs), np.ptp(ys)) if xs else 0.0
    if borders is not None and len(xs):
        b = borders.total_bounds
        span = max(span, 0.05 * max(b[2] - b[0], b[3] - b[1]))
    if span > 0:
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        ax.set_xlim(cx - 0.8 * span, cx + 0.8 * span)
        ax.set_ylim(cy - 0.6 * span, cy + 0.6 * span)
    ax.legend(fontsize=8, loc="lower right", title="centre of gravity of", title_fontsize=8)
    ax.set_title(title, fontsize=11)
    _map_furniture(ax, centres)
    return _png(fig)

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
    """Stacked bars of class areas (Mha) of the ``top`` largest units."""
    plt = _setup()
    cols = [c for c in frame.columns if c.startswith("area_ha_class_")]
    t = frame.sort_values("area_ha", ascending=False).head(top)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(t) + 1.2))
    left = np.zeros(len(t))
    cmap = plt.get_cmap("tab20")
    for i, c in enumerate(cols):
        v = t[c].to_numpy(float) / 1e6
        if v.sum() <= 0:
            continue
        code = int(c.removeprefix("area_ha_class_"))
        ax.barh(t["name"].astype(str), v, left=left, color=cmap(i % 20), label=names.get(code, str(code)))
        left += v
    ax.invert_yaxis()
    ax.set_xlabel("area, Mha")
    ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(title, fontsize=11)
    return _png(fig)

"""Default QGIS styles, so that outputs dragged into QGIS open as maps.

- The carbon-balance COG gets a ``.qml`` sidecar (QGIS loads ``<name>.qml`` beside a
  raster): the ``net`` band in a diverging ramp centred on zero, sinks green, sources
  red; each coefficient value is a legend entry naming its land-cover classes.
- Zonal GeoPackage layers get a graduated style on net emission per ha in the
  GeoPackage's ``layer_styles`` table (QGIS's own schema), used as the default.

Colours: ColorBrewer RdYlGn (reversed), colour-blind safe in its 6-class form
(Harrower & Brewer 2003).
"""

from __future__ import annotations

import sqlite3
from xml.sax.saxutils import quoteattr

import numpy as np

#: sink (green) ... source (red): ColorBrewer RdYlGn, 6 classes, reversed
DIVERGING = ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027")
_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.28.0\" styleCategories=\"Symbology\">\n"


def _rgba(hex_colour: str) -> str:
    return ",".join(str(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5)) + ",255"


def symmetric_breaks(values) -> list[float]:
    """Seven class bounds centred on zero: min, -q, -q/4, 0, q/4, q, max (q: the 95th percentile of |value|)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return [-1.0, -0.5, -0.125, 0.0, 0.125, 0.5, 1.0]
    q = float(np.quantile(np.abs(v), 0.95)) or float(np.abs(v).max()) or 1.0
    lo, hi = min(float(v.min()), -q), max(float(v.max()), q)
    return [lo, -q, -q / 4, 0.0, q / 4, q, hi]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def graduated_qml(column: str, values, unit: str, title: str) -> str:
    """A graduated fill style of ``column`` in six classes diverging at zero."""
    b = symmetric_breaks(values)
    ranges = "".join(
        f'      <range lower="{b[i]!r}" upper="{b[i + 1]!r}" symbol="{i}" label={quoteattr(f"{_fmt(b[i])} to {_fmt(b[i + 1])}")} render="true"/>\n'
        for i in range(6)
    )
    symbols = "".join(
        f'      <symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
        f'        <layer class="SimpleFill" enabled="1" pass="0" locked="0"><Option type="Map">'
        f'<Option name="color" type="QString" value="{_rgba(c)}"/><Option name="outline_color" type="QString" value="90,90,90,255"/>'
        f'<Option name="outline_width" type="QString" value="0.1"/><Option name="style" type="QString" value="solid"/></Option></layer>\n'
        "      </symbol>\n"
        for i, c in enumerate(DIVERGING)
    )
    return (
        f"{_HEAD}  <renderer-v2 type=\"graduatedSymbol\" attr={quoteattr(column)} graduatedMethod=\"GraduatedColor\" symbollevels=\"0\" forceraster=\"0\" enableorderby=\"0\">\n"
        f"    <ranges>\n{ranges}    </ranges>\n    <symbols>\n{symbols}    </symbols>\n  </renderer-v2>\n"
        f"  <layerGeometryType>2</layerGeometryType>\n</qgis>\n"
    ).replace("<qgis version", f"<!-- {title} [{unit}]: sinks green, sources red -->\n<qgis version", 1)


def raster_qml(band: int, entries: list[tuple[float, str]], unit: str, exact: bool) -> str:
    """A pseudocolour style of ``band``: ``entries`` are (value, label), coloured by sign and rank around zero.

    ``exact``: one legend entry per value (the class coefficients); else a continuous ramp
    through the entries (a flux raster's values).
    """
    entries = sorted(entries)
    neg = [v for v, _ in entries if v < 0]
    pos = [v for v, _ in entries if v > 0]

    def colour(v: float) -> str:  # by rank on its side of zero: the strongest sink darkest green, the strongest source darkest red
        if v < 0:
            return DIVERGING[round(2 * neg.index(v) / (len(neg) - 1)) if len(neg) > 1 else 0]
        if v > 0:
            return DIVERGING[3 + (round(2 * pos.index(v) / (len(pos) - 1)) if len(pos) > 1 else 2)]
        return "#f7f7f7"

    items = "".join(f'        <item value="{v!r}" color="{colour(v)}" alpha="255" label={quoteattr(label)}/>\n' for v, label in entries)
    lo, hi = entries[0][0], entries[-1][0]
    kind = "EXACT" if exact else "INTERPOLATED"
    return (
        f"{_HEAD}  <pipe>\n    <rasterrenderer type=\"singlebandpseudocolor\" band=\"{band}\" opacity=\"1\" alphaBand=\"-1\" "
        f"classificationMin=\"{lo!r}\" classificationMax=\"{hi!r}\" nodataColor=\"\">\n"
        f"      <rastershader>\n      <colorrampshader colorRampType=\"{kind}\" classificationMode=\"1\" clip=\"0\" minimumValue=\"{lo!r}\" maximumValue=\"{hi!r}\" labelPrecision=\"3\">\n"
        f"{items}      </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    ).replace("<qgis version", f"<!-- net carbon flux density [{unit}]: sinks green, sources red -->\n<qgis version", 1)


def store_layer_style(db: sqlite3.Connection, layer: str, qml: str) -> None:
    """Save ``qml`` as the default style of ``layer`` in QGIS's ``layer_styles`` table."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256), "
        "f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, "
        "description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"
    )
    db.execute(
        "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description) VALUES ('layer_styles', 'attributes', 'layer_styles', 'QGIS styles')"
    )
    geometry = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
    db.execute(
        "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner) "
        "VALUES ('', '', ?, ?, ?, ?, '', 1, 'lucr default: net emission per ha, diverging at zero', 'lucr')",
        (layer, geometry[0] if geometry else "geom", layer, qml),
    )

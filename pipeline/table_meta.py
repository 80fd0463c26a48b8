"""What each output column means, in the files themselves.

Machine column names stay stable and English (``net_tc``, ``area_ha_class_13``); this
module gives each a human-readable title (English or Chinese), a description and a
unit, and writes them where the tools people use read them:

- GeoPackage: the ``gpkg_data_columns`` table of the GeoPackage schema extension
  (QGIS shows ``title`` as the field alias), and for zonal tables a default QGIS style
  in the ``layer_styles`` table (:mod:`lucr.qgis_style`), so the layer opens as a map;
- Parquet: field metadata (``title``, ``description``, ``unit``) in the Arrow schema;
- xlsx: the header rows of :mod:`lucr.xlsx`.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lucr.units import is_carbon


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    title: str
    description: str
    unit: str


# column -> (English title, Chinese title, description, unit); carbon columns in t C, renamed by lucr.units
_KNOWN = {
    "unit_id": ("unit id", "单元代码", "id of the admin unit (from the polygon layer)", ""),
    "name": ("name", "名称", "name of the admin unit", ""),
    "parent_id": ("parent id", "上级单元代码", "id of the enclosing unit one level up", ""),
    "level": ("level", "级别", "admin level of the unit", ""),
    "year": ("year", "年份", "year of the land cover", ""),
    "area_ha": ("area", "面积", "area of the unit on the grid plus its part outside the grid (true cell areas)", "ha"),
    "valid_fraction": ("share with data", "有效数据比例", "share of the unit's area with land-cover data", "1"),
    "source_tc": ("carbon source", "碳源", "carbon released by the source classes (cropland, built-up)", "t C / yr"),
    "sink_tc": ("carbon sink", "碳汇", "carbon fixed by the sink classes (negative)", "t C / yr"),
    "net_tc": ("net carbon emission", "净碳排放", "source + sink (positive: the unit is a net source)", "t C / yr"),
    "net_tc_per_ha": ("net emission per ha", "单位面积净碳排放", "net carbon emission per hectare with data", "t C / ha / yr"),
    "cbc": ("carbon balance coefficient", "碳收支系数", "source / |sink| (> 1: the unit emits more than its ecosystems fix)", "1"),
    "polygon_area_ha": ("polygon area", "多边形面积", "ellipsoidal area of the unit's polygon", "ha"),
    "flux_raster_area_ha": ("area from the flux raster", "通量栅格覆盖面积", "area where the flux raster replaced the class coefficient", "ha"),
    "code": ("class code", "类别代码", "land-cover class code", ""),
    "coef_tc_per_ha": ("flux coefficient", "碳通量系数", "carbon flux density of the class (sources positive)", "t C / ha / yr"),
    "coef_low_tc_per_ha": ("coefficient, low", "系数下限", "low end of the range the Monte Carlo draws the coefficient from", "t C / ha / yr"),
    "coef_high_tc_per_ha": ("coefficient, high", "系数上限", "high end of that range (coef +/- 1.645 sd for a normal draw)", "t C / ha / yr"),
    "coef_sd_tc_per_ha": ("coefficient, sd", "系数标准差", "standard deviation of a normal draw (empty: triangular low-coef-high)", "t C / ha / yr"),
    "range_source": ("range source", "区间来源", "where the range comes from: the config, the coefficient table (with its source) or an assumed share by status", ""),
    "status": ("status", "来源状态", "provenance of the value: paper, literature_default, unverified or user", ""),
    "ref": ("reference", "参考文献", "source of the value", ""),
}
_CLASS_AREA = re.compile(r"^area_ha_class_(-?\d+)$")


def describe(columns, *, classes=None, lang: str = "en") -> dict[str, ColumnInfo]:
    """Title, description and unit of each column (``classes``: the coefficient table, naming class columns)."""
    names = {c.code: c.name for c in classes.classes} if classes is not None else {}
    out = {}
    for col in columns:
        if not isinstance(col, str) or col == "geometry":
            continue
        base = re.sub(r"(?<![a-z0-9])tco2(?![a-z0-9])", "tc", col)
        co2 = base != col
        if base in _KNOWN:
            en, zh, description, unit = _KNOWN[base]
        elif (m := _CLASS_AREA.match(col)) is not None:
            code = int(m.group(1))
            label = names.get(code, f"class {code}")
            en, zh, description, unit = f"{label} ({code})", f"{label}（{code}）", f"area of land-cover class {code} ({label})", "ha"
        else:
            en = zh = col
            description, unit = "", ("t C" if is_carbon(base) else "")
        if co2:
            unit = unit.replace("t C", "t CO2")
            description += " (t CO2 = t C x 44/12)"
        out[col] = ColumnInfo(col, zh if lang == "zh" else en, description, unit)
    return out


def annotate_geopackage(path: Path, layer: str, described: dict[str, ColumnInfo], styled: bool) -> None:
    """Column titles and descriptions (``gpkg_data_columns``) and, for a styled zonal layer, a default QGIS style."""
    from lucr import qgis_style

    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, "
            "description TEXT, mime_type TEXT, constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
            "CONSTRAINT gdc_tn UNIQUE (table_name, name))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, "
            "definition TEXT NOT NULL, scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
        )
        db.execute(
            "INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) "
            "VALUES ('gpkg_data_columns', NULL, 'gpkg_schema', 'http://www.geopackage.org/spec/#extension_schema', 'read-write')"
        )
        db.executemany(
            "INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, description) VALUES (?, ?, ?, ?, ?)",
            [(layer, c.name, c.name, c.title, f"{c.description} [{c.unit}]" if c.unit else c.description) for c in described.values()],
        )
        column = next((c for c in described if c in ("net_tc_per_ha", "net_tco2_per_ha")), None)
        if styled and column is not None:
            values = pd.read_sql(f'SELECT "{column}" FROM "{layer}"', db)[column]
            qgis_style.store_layer_style(db, layer, qgis_style.graduated_qml(column, values, described[column].unit, described[column].title))


def write_parquet(frame: pd.DataFrame, path: Path, described: dict[str, ColumnInfo]) -> None:
    """(Geo)Parquet with each field's title, description and unit in the Arrow schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(frame, "geometry") and "geometry" in frame.columns:
        from geopandas.io.arrow import _geopandas_to_arrow

        table = _geopandas_to_arrow(frame, index=False)
    else:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for field in table.schema:
        info = described.get(field.name)
        meta = {"title": info.title, "description": info.description, "unit": info.unit} if info is not None else None
        fields.append(field.with_metadata(meta) if meta else field)
    pq.write_table(table.cast(pa.schema(fields, metadata=table.schema.metadata)), path)

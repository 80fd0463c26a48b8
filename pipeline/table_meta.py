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

import json
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor, wait
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


# column -> (English title, Chinese title); descriptions and units come from lucr.outputs_spec (one declaration)
_TITLES = {
    "unit_id": ("unit id", "单元代码"),
    "name": ("name", "名称"),
    "parent_id": ("parent id", "上级单元代码"),
    "level": ("level", "级别"),
    "year": ("year", "年份"),
    "area_ha": ("area", "面积"),
    "valid_fraction": ("share with data", "有效数据比例"),
    "source_tc": ("carbon source", "碳源"),
    "sink_tc": ("carbon sink", "碳汇"),
    "net_tc": ("net carbon emission", "净碳排放"),
    "net_tc_per_ha": ("net emission per ha", "单位面积净碳排放"),
    "cbc": ("carbon balance coefficient", "碳收支系数"),
    "cbc_landcover": ("carbon balance coefficient (land cover)", "碳收支系数（土地利用）"),
    "polygon_area_ha": ("polygon area", "多边形面积"),
    "flux_raster_area_ha": ("area from the flux raster", "通量栅格覆盖面积"),
    "code": ("class code", "类别代码"),
    "coef_tc_per_ha": ("flux coefficient", "碳通量系数"),
    "coef_low_tc_per_ha": ("coefficient, low", "系数下限"),
    "coef_high_tc_per_ha": ("coefficient, high", "系数上限"),
    "coef_sd_tc_per_ha": ("coefficient, sd", "系数标准差"),
    "range_source": ("range source", "区间来源"),
    "status": ("status", "来源状态"),
    "ref": ("reference", "参考文献"),
    "obc": ("oxygen balance coefficient", "氧收支系数"),
    "grade": ("risk grade", "风险等级"),
    "grade_label": ("risk grade label", "风险等级名称"),
    "balance_type": ("balance type", "失衡类型"),
    "spatial_type": ("spatial type", "空间类型"),
    "temporal_type": ("temporal type", "时间类型"),
    "driver_type": ("driver type", "驱动类型"),
    "warning": ("early warning", "预警"),
    "crossing_year": ("forecast crossing year", "预测越限年份"),
    "assessment": ("grade - type - effect", "等级-类型-效应"),
}
_CLASS_AREA = re.compile(r"^area_ha_class_(-?\d+)$")


def describe(columns, *, classes=None, lang: str = "en", stem: str | None = None) -> dict[str, ColumnInfo]:
    """Title, description and unit of each column: descriptions and units as declared in
    :mod:`lucr.outputs_spec` (of the table ``stem`` where given), titles in English or Chinese
    (``classes``: the coefficient table, naming class columns)."""
    from lucr.outputs_spec import column_info

    names = {c.code: c.name for c in classes.classes} if classes is not None else {}
    out = {}
    for col in columns:
        if not isinstance(col, str) or col == "geometry":
            continue
        base = re.sub(r"(?<![a-z0-9])tco2(?![a-z0-9])", "tc", col)
        co2 = base != col
        declared = column_info(base, stem)
        description, unit = (declared.description, declared.unit) if declared is not None else ("", "t C" if is_carbon(base) else "")
        en, zh = _TITLES.get(base, (col, col))
        if (m := _CLASS_AREA.match(col)) is not None:
            code = int(m.group(1))
            label = names.get(code, f"class {code}")
            en, zh, description = f"{label} ({code})", f"{label}（{code}）", f"area of land-cover class {code} ({label})"
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


#: Rows converted to Arrow and written at a time: a 324,523-unit table converted whole held
#: 136 MiB of Arrow buffers beside the frame. Two slices are in memory at a time (one written,
#: the next converted): with 16,384 rows the write's first call rose 47-54 MiB at the peak, with
#: 32,768 rows 66-102 MiB, in the same time (within noise).
PARQUET_ROWS = 16_384


def write_parquet(frame: pd.DataFrame, path: Path, described: dict[str, ColumnInfo]) -> None:
    """(Geo)Parquet with each field's title, description and unit in the Arrow schema.

    Written ``PARQUET_ROWS`` at a time (one row group each), with the GeoParquet metadata
    (bounding box, geometry types) of the whole frame and, for object columns, the whole
    column's Arrow type; pandas' own schema metadata is the first slice's (the same for
    lucr's typed columns).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    geo = hasattr(frame, "geometry") and "geometry" in frame.columns
    if geo:
        from geopandas.io._geoarrow import geopandas_to_arrow
        from geopandas.io.arrow import _create_metadata, _encode_metadata

        # the slices' GeoParquet metadata is not made (bounds and geometry types of each slice:
        # 0.12 s at 324,523 units); the file's is the whole frame's, made once below
        to_arrow = lambda part: geopandas_to_arrow(part, geometry_encoding="WKB", index=False, interleaved=False)[0]  # noqa: E731
    else:
        to_arrow = lambda part: pa.Table.from_pandas(part, preserve_index=False)  # noqa: E731
    # a slice of an object column may infer another type than the whole column (null where all
    # None): those take the whole column's; typed columns convert the same whatever the rows
    whole = {c: pa.array(frame[c], from_pandas=True).type for c in frame.columns if c != "geometry" and frame[c].dtype == object}
    geo_metadata = _encode_metadata(_create_metadata(frame, geometry_encoding={"geometry": "WKB"})) if geo else None
    # a slice is written (Arrow encodes and compresses without the GIL) while the next is converted
    # (GEOS to WKB, under the GIL): 324,523 units in 0.38-0.43 against 0.51-0.59 s one after the other (32,768 rows)
    writer, schema, writing = None, None, None
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for start in range(0, max(len(frame), 1), PARQUET_ROWS):
                table = to_arrow(frame.iloc[start : start + PARQUET_ROWS])
                if writer is None:
                    schema = _described_schema(table.schema, whole, described, geo_metadata, frame.attrs)
                    # dictionary pages for text only: numbers and WKB are rarely repeated, and trying a
                    # dictionary first doubled the write time of a 324,523-unit table (0.18 vs 0.35 s) for a larger file
                    text = [f.name for f in schema if f.name != "geometry" and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type))]
                    writer = pq.ParquetWriter(path, schema, use_dictionary=text)
                table = table.cast(schema)
                if writing is not None:
                    writing.result()  # the slices in order, and the previous one's error here
                writing = pool.submit(writer.write_table, table)
                del table
            writing.result()
        finally:
            if writing is not None:
                wait([writing])  # not closed under a write still running (after an error in a conversion)
            if writer is not None:
                writer.close()
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps what it freed


def _described_schema(first_slice, whole: dict, described: dict[str, ColumnInfo], geo_metadata: bytes | None, attrs: dict):
    """The file's Arrow schema: the first slice's, with object columns of the whole column's type,
    each field's title, description and unit, and the whole frame's GeoParquet metadata (and
    ``attrs``, as geopandas writes them: e.g. the CRS of a gravity table's x/y)."""
    import pyarrow as pa

    metadata = dict(first_slice.metadata or {})
    if geo_metadata is not None:
        metadata[b"geo"] = geo_metadata
        if attrs:
            metadata[b"PANDAS_ATTRS"] = json.dumps(attrs)
    fields = []
    for field in first_slice:
        if field.name in whole:
            field = field.with_type(whole[field.name])
        info = described.get(field.name)
        fields.append(field.with_metadata({"title": info.title, "description": info.description, "unit": info.unit}) if info is not None else field)
    return pa.schema(fields, metadata=metadata)

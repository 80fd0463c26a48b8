"""What a planner meets on first use: the headline, units, Excel, QGIS, Chinese, CLI conveniences."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from lucr.config import SAMPLE_CONFIG, load_config, parse_config
from lucr.runner import run
from lucr.units import CO2_PER_C
from tests.conftest import SAMPLE_CITIES, SAMPLE_PROVINCES, SAMPLE_RASTER

LUCR = str(Path(sys.executable).parent / "lucr")


def _lucr(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = {"COLUMNS": str(columns), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    proc = subprocess.run([LUCR, *args], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def co2_zh(tmp_path_factory):
    """The sample in t CO2, Chinese, with an xlsx workbook and a kept column, through the CLI."""
    out = tmp_path_factory.mktemp("co2") / "out"
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    base = SAMPLE_CONFIG.parent
    cfg["landcover"]["path"] = str((base / cfg["landcover"]["path"]).resolve())
    for z in cfg["zones"]:
        z["path"] = str((base / z["path"]).resolve())
    cfg["zones"][1]["keep"] = ["province_name"]
    cfg["output"] = {"dir": str(out), "tables": ["gpkg", "csv", "parquet", "xlsx"]}
    path = out.parent / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    proc = _lucr("run", str(path), "--units", "t CO2", "--lang", "zh", "--no-analysis")
    return out, proc


# ---- numbers people quote -------------------------------------------------------------


def test_headline_is_the_total_inside_the_units(exact_run):
    s = exact_run.summary
    inside, prov = s["inside_units"], exact_run.tables["province"]
    assert list(s)[:6] == ["landcover", "year", "legend", "engine", "inside_units", "whole_raster"]  # quoted figures first
    assert inside["units"] == 34 and inside["net_tc"] == pytest.approx(prov["net_tc"].sum(), rel=1e-12)
    assert inside["cbc_landcover"] == pytest.approx(prov["source_tc"].sum() / -prov["sink_tc"].sum(), rel=1e-12)
    whole = s["whole_raster"]
    assert "outside the units" in whole["note"] and whole["valid_area_ha"] > 3 * inside["valid_area_ha"]  # sea and neighbours


def test_console_leads_with_the_units_and_fits_80_columns(tmp_path):
    from rich.cells import cell_len

    proc = _lucr("run", "--out", str(tmp_path / "out"), "--no-analysis")
    lines = proc.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80, [line for line in lines if cell_len(line) > 80]
    assert any("新疆维吾尔自治区" in line for line in lines)  # names whole, not wrapped
    assert any("(kha; kt C/yr" in line for line in lines)  # units fitted to the magnitudes
    assert any("澳门特别行政区" in line and " 5 " in line for line in lines)  # 5 kha, not 0.00 Mha
    i = next(i for i, line in enumerate(lines) if line.startswith("Inside the 34 provinces"))
    assert "net 559.64 Mt C/yr" in lines[i + 1] and lines[i + 2].startswith("Whole raster, cells outside the units included")


def test_scale_for_fits_the_magnitudes():
    from lucr.report import scale_for

    assert scale_for([4_500, 163_050_000], "ha") == (1e3, "kha")
    assert scale_for([737.96e6, 559.64e6], "t") == (1e6, "Mt")
    assert scale_for([12.0], "t") == (1.0, "t")


# ---- units --------------------------------------------------------------------------------


def test_t_co2_changes_every_carbon_figure_by_44_12(exact_run, co2_zh):
    out, _ = co2_zh
    got = pd.read_csv(out / "zonal_provinces.csv", dtype={"unit_id": str, "parent_id": str}).set_index("unit_id")
    ref = exact_run.tables["province"].set_index("unit_id")
    for col in ("source_tc", "sink_tc", "net_tc", "net_tc_per_ha"):
        co2 = col.replace("_tc", "_tco2")
        assert col not in got.columns
        np.testing.assert_allclose(got[co2], ref[col] * CO2_PER_C, rtol=1e-9)
    np.testing.assert_allclose(got["cbc_landcover"], ref["cbc_landcover"], rtol=1e-9)  # a ratio: unchanged
    np.testing.assert_allclose(got["area_ha"], ref["area_ha"], rtol=1e-9)
    with rasterio.open(out / "carbon_balance.tif") as a, rasterio.open(exact_run.maps["carbon_balance"]) as b:
        assert a.units == ("t CO2 / ha / yr",) * 3 and a.tags(3)["units"] == "t CO2 / ha / yr"
        np.testing.assert_allclose(a.read(3), b.read(3) * np.float32(CO2_PER_C), rtol=1e-6)
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["units"] == "t CO2"
    assert summary["inside_units"]["net_tco2"] == pytest.approx(exact_run.summary["inside_units"]["net_tc"] * CO2_PER_C, rel=1e-12)


# ---- Excel and QGIS ---------------------------------------------------------------------


def test_csv_starts_with_a_bom_and_reads_as_utf8(exact_run, tmp_path):
    raw = (exact_run.out_dir / "zonal_provinces.csv").read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf" and "贵州省" in raw[3:].decode("utf-8")
    cfg = load_config(SAMPLE_CONFIG)
    cfg = cfg.model_copy(update={"analysis": None, "zones": cfg.zones[:1], "output": cfg.output.model_copy(update={"csv_bom": False, "tables": ["csv"]})})
    result = run(cfg, out_dir=tmp_path)
    assert (result.out_dir / "zonal_provinces.csv").read_bytes()[:9] == b"unit_id,n"


def test_map_opens_styled_in_qgis(exact_run):
    root = ET.parse(exact_run.out_dir / "carbon_balance.qml").getroot()
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "3"
    items = root.findall(".//colorrampshader/item")
    values = [float(i.get("value")) for i in items]
    assert len(values) == len({float(np.float32(c)) for c in exact_run_table_coefs()})
    assert any("Urban and built-up lands" in i.get("label") for i in items)
    colours = dict(zip(values, (i.get("color") for i in items)))
    assert colours[min(values)] == "#1a9850" and colours[max(values)] == "#d73027"  # strongest sink green, strongest source red


def exact_run_table_coefs():
    from lucr.coefficients import load_table

    return load_table("igbp").coefs


def test_geopackage_opens_styled_with_column_titles(exact_run):
    with sqlite3.connect(exact_run.out_dir / "zonal_provinces.gpkg") as db:
        (qml, default), = db.execute("SELECT styleQML, useAsDefault FROM layer_styles WHERE f_table_name = 'zonal_provinces'").fetchall()
        titles = dict(db.execute("SELECT column_name, title FROM gpkg_data_columns WHERE table_name = 'zonal_provinces'").fetchall())
        contents = {r[0] for r in db.execute("SELECT table_name FROM gpkg_contents")}
    renderer = ET.fromstring(qml).find("renderer-v2")
    assert default == 1 and renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "net_tc_per_ha"
    bounds = sorted(float(r.get("lower")) for r in renderer.findall("ranges/range"))
    assert len(bounds) == 6 and 0.0 in bounds  # diverging at zero
    assert titles["net_tc"] == "net carbon emission" and titles["area_ha_class_13"] == "Urban and built-up lands (13)"
    assert "layer_styles" in contents
    import pyogrio

    assert pyogrio.read_dataframe(exact_run.out_dir / "zonal_provinces.gpkg", layer="zonal_provinces").shape[0] == 34


def test_parquet_fields_carry_title_and_unit(exact_run):
    import pyarrow.parquet as pq

    schema = pq.read_schema(exact_run.out_dir / "zonal_provinces.parquet")
    assert schema.field("net_tc").metadata[b"unit"] == b"t C / yr"
    assert schema.field("net_tc_per_ha").metadata[b"title"] == b"net emission per ha"
    assert b"geo" in schema.metadata  # still GeoParquet


def test_legend_table_in_every_output_set(exact_run):
    legend = pd.read_csv(exact_run.out_dir / "legend.csv")
    assert list(legend.columns) == ["code", "name", "coef_tc_per_ha", "status", "ref", "coef_low_tc_per_ha", "coef_high_tc_per_ha", "coef_sd_tc_per_ha", "range_source"]
    by_code = legend.set_index("code")
    assert by_code.loc[13, "coef_tc_per_ha"] == 55.8 and by_code.loc[13, "status"] == "unverified"
    assert (by_code.loc[13, "coef_low_tc_per_ha"], by_code.loc[13, "coef_high_tc_per_ha"]) == pytest.approx((27.9, 83.7))  # assumed +/-50 %
    assert by_code.loc[13, "range_source"] == "assumed: +/-50% (unverified)" and by_code.loc[1, "range_source"].startswith("table: range (Fang")


def test_xlsx_has_a_sheet_per_table_with_titles_and_units(co2_zh):
    from openpyxl import load_workbook

    out, _ = co2_zh
    book = load_workbook(out / "lucr_tables.xlsx", read_only=True)
    assert book.sheetnames == ["zonal_provinces", "zonal_cities", "legend"]
    rows = list(book["zonal_cities"].iter_rows(max_row=4, values_only=True))
    names, titles, units, first = rows
    j = names.index("area_ha_class_13")
    assert titles[j] == "Urban and built-up lands（13）" and units[j] == "ha"
    k = names.index("net_tco2")
    assert titles[k] == "净碳排放" and units[k] == "t CO2 / yr"
    assert "province_name" in names and first[names.index("province_name")]  # zones[].keep
    assert sum(1 for _ in book["zonal_cities"].iter_rows()) == 3 + 370


def test_keep_copies_columns_to_every_format(co2_zh):
    import geopandas as gpd

    out, _ = co2_zh
    cities = gpd.read_file(out / "zonal_cities.gpkg", layer="zonal_cities")
    src = gpd.read_file(SAMPLE_CITIES, layer="cities").set_index("adcode")
    assert (cities.set_index("unit_id")["province_name"] == src.loc[cities["unit_id"], "province_name"].to_numpy()).all()


def test_map_holds_only_cells_inside_the_units(exact_run, tmp_path):
    with rasterio.open(exact_run.maps["carbon_balance"]) as src:
        net = src.read(3)
        tags, stats = src.tags(), src.tags(3)
    with rasterio.open(SAMPLE_RASTER) as src:
        all_cells = src.width * src.height
    assert 0.2 < np.isfinite(net).sum() / all_cells < 0.4 and "inside the units" in tags["lucr_extent"]
    assert float(stats["STATISTICS_VALID_PERCENT"]) == pytest.approx(100 * np.isfinite(net).mean(), abs=1.0)
    assert float(stats["STATISTICS_MINIMUM"]) == pytest.approx(np.nanmin(net)) and float(stats["STATISTICS_MAXIMUM"]) == pytest.approx(np.nanmax(net))
    assert float(stats["STATISTICS_MEAN"]) == pytest.approx(np.nanmean(net), rel=0.05)  # from the coarsest overview
    cfg = load_config(SAMPLE_CONFIG)
    cfg = cfg.model_copy(update={"analysis": None, "output": cfg.output.model_copy(update={"map_extent": "raster", "tables": ["csv"]})})
    with rasterio.open(run(cfg, out_dir=tmp_path).maps["carbon_balance"]) as src:
        assert np.isfinite(src.read(3)).all()


# ---- Chinese ---------------------------------------------------------------------------------


def test_lang_zh_prints_a_chinese_summary(co2_zh):
    _, proc = co2_zh
    assert "34 个province单元内" in proc.stdout and "碳源" in proc.stdout and "净排放" in proc.stdout and "Gt CO2/年" in proc.stdout
    assert "已写出" in proc.stdout and "Inside the" not in proc.stdout


def _levels_cfg(tmp_path, level, **extra):
    zone = {"level": level, "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name", **extra}
    return {"landcover": {"path": str(SAMPLE_RASTER)}, "legend": "igbp", "zones": [zone], "output": {"dir": str(tmp_path / "o"), "tables": ["csv"]}}


def test_chinese_level_names_give_ascii_file_names(tmp_path):
    from lucr.errors import ConfigError

    result = run(parse_config(_levels_cfg(tmp_path, "省"), tmp_path))
    assert (result.out_dir / "zonal_provinces.csv").exists() and result.tables["省"]["level"].iloc[0] == "省"
    with pytest.raises(ConfigError, match="give the file stem of its tables"):
        parse_config(_levels_cfg(tmp_path, "片区"), tmp_path)
    cfg = parse_config(_levels_cfg(tmp_path, "片区", output="zonal_districts"), tmp_path)
    assert cfg.zones[0].output_stem() == "zonal_districts" and cfg.zones[0].plural == "districts"
    with pytest.raises(ConfigError, match="ASCII file stem"):
        parse_config(_levels_cfg(tmp_path, "省", output="zonal_省"), tmp_path)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_coefficient_tables_in_the_encodings_excel_saves(tmp_path, caplog, encoding):
    from lucr.coefficients import load_table

    path = tmp_path / "t.csv"
    path.write_bytes(("code,name,coef\n" + "\n".join(f"{c},类别{c},-0.1" for c in range(17)) + "\n").encode(encoding))
    with caplog.at_level(logging.INFO, logger="lucr"):
        table = load_table(path=path)
    assert table.classes[3].name == "类别3"
    assert ("read as GB18030" in caplog.text) == (encoding == "gb18030")


# ---- CLI conveniences ------------------------------------------------------------------------


def test_legends_prints_a_table():
    proc = _lucr("legends", "igbp", columns=120)
    for fragment in ("Urban and built-up lands", "+55.8", "unverified", "builtup_558", "t C / ha / yr", "seed001_t2:"):
        assert fragment in proc.stdout, fragment
    co2 = _lucr("legends", "igbp", "--units", "t CO2", columns=120)
    assert f"{55.8 * CO2_PER_C:+.4g}" in co2.stdout


def test_levels_and_no_analysis(tmp_path):
    from lucr.config import with_options
    from lucr.errors import ConfigError

    cfg = with_options(load_config(SAMPLE_CONFIG), levels="city", no_analysis=True)
    assert [z.level for z in cfg.zones] == ["city"] and cfg.zones[0].parent is None and cfg.analysis is None
    result = run(cfg.model_copy(update={"output": cfg.output.model_copy(update={"tables": ["csv"]})}), out_dir=tmp_path)
    assert set(result.tables) == {"city"} and not result.analyses
    with pytest.raises(ConfigError, match="unknown level"):
        with_options(load_config(SAMPLE_CONFIG), levels="county")


def test_analyze_a_geopackage_uses_its_own_polygons(exact_run, tmp_path):
    proc = _lucr("analyze", str(exact_run.out_dir / "zonal_provinces.gpkg"), "--id", "unit_id", "--value", "net_tc_per_ha", "--out", str(tmp_path / "a"))
    assert (tmp_path / "a" / "analysis_zonal_provinces_moran.csv").exists()
    assert "using its own polygons" in " ".join(proc.stderr.split())


def test_a_skipped_section_is_said_once_with_what_enables_it(tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "v": [1.0, 2.0, 3.0, 5.0]}).to_csv(table, index=False)
    proc = _lucr("analyze", str(table), "--id", "id", "--value", "v", "--out", str(tmp_path / "a"), columns=200)
    said = " ".join(proc.stderr.split())
    assert said.count("Moran's I, LISA and centres of gravity skipped") == 1 and "--polygons FILE" in said


def test_run_reports_each_step_after_the_pass(tmp_path):
    steps: list[str] = []
    run(load_config(SAMPLE_CONFIG), out_dir=tmp_path, status=steps.append)
    assert steps[0] == "zonal tables of 2019" and any(s.startswith("analysis of provinces") for s in steps) and any(s.startswith("run.json") for s in steps)


def test_esda_first_compile_is_said(tmp_path, caplog):
    from lucr.analysis.autocorrelation import _say_first_compile

    with caplog.at_level(logging.INFO, logger="lucr"):
        _say_first_compile(tmp_path)
        assert "first use on this machine only" in caplog.text
        caplog.clear()
        (tmp_path / "crand.moran_local-1.nbi").write_bytes(b"")
        _say_first_compile(tmp_path)
        assert caplog.text == ""


def test_existing_outputs_are_refused_before_the_pass(tmp_path, monkeypatch):
    from lucr import runner as run_module
    from lucr.errors import OutputExistsError

    (tmp_path / "carbon_balance.tif").write_bytes(b"earlier")
    monkeypatch.setattr(run_module, "_single_pass", lambda *a, **k: pytest.fail("the pass ran"))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run(load_config(SAMPLE_CONFIG), out_dir=tmp_path)


def test_unverified_coefficients_carrying_the_source_are_warned(exact_run, caplog):
    """The sample's source is all cropland and built-up (both unverified): said, and recorded."""
    share = exact_run.summary["unverified_share"]
    assert share["source"] == pytest.approx(1.0) and share["sink"] == 0.0
    from lucr.coefficients import load_table
    from lucr.coefficient_notes import unverified_share

    with caplog.at_level(logging.WARNING, logger="lucr"):
        unverified_share(load_table("igbp"), {"province": exact_run.tables["province"]}, 0.5)
    assert "100 % of the source inside the units comes from coefficients without a verified source" in caplog.text

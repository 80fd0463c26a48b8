"""The one declaration of the outputs: every file and column a run writes is declared, and the
documentation generated from it is in sync."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lucr import outputs_spec
from lucr.table_meta import describe

ROOT = Path(__file__).resolve().parent.parent


def test_sample_run_writes_only_declared_files_and_columns(exact_run):
    check = outputs_spec.check_folder(exact_run.out_dir)
    assert check.ok, (check.undeclared_files, check.undeclared_columns)
    kinds = set(check.files.values())
    assert {"zonal", "risk", "risk_breaks", "legend", "carbon_balance", "risk_grade", "report", "run_record", "analysis_lisa"} <= kinds


def test_an_undeclared_file_or_column_is_reported(exact_run, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(exact_run.out_dir, folder)
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    frame = pd.read_csv(folder / "zonal_provinces.csv", encoding="utf-8-sig")
    frame.assign(my_column=1).to_csv(folder / "zonal_provinces.csv", index=False)
    check = outputs_spec.check_folder(folder)
    assert check.undeclared_files == ["notes.txt"] and check.undeclared_columns == {"zonal_provinces.csv": ["my_column"]}
    cli = subprocess.run([sys.executable, "-m", "lucr.cli", "validate", str(folder)], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert cli.returncode == 1 and "undeclared file: notes.txt" in cli.stdout and "my_column" in cli.stdout
    ok = subprocess.run([sys.executable, "-m", "lucr.cli", "validate", str(exact_run.out_dir)], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert ok.returncode == 0 and "all declared outputs" in ok.stdout


def test_file_names_map_to_their_outputs():
    cases = {
        "zonal_provinces.csv": "zonal", "zonal_provinces_2019.gpkg": "zonal", "zonal_cities_by_year.parquet": "zonal_by_year",
        "risk_provinces.gpkg": "risk", "risk_provinces_breaks.csv": "risk_breaks", "risk_inventory_forecast.csv": "risk_forecast",
        "risk_grade_2019.tif": "risk_grade", "carbon_balance.qml": "carbon_balance_style", "transitions_1985_1991.tif": "transitions_map",
        "transitions_counties.csv": "transitions", "analysis_cities_gravity_track.gpkg": "analysis_gravity_track",
        "analysis_cities_gravity.gpkg": "analysis_gravity", "inventory_provinces_eco_land_demand.csv": "inventory_demand", "inventory.csv": "inventory",
    }
    assert {name: outputs_spec.output_of(name).id for name in cases} == cases
    assert outputs_spec.output_of("zonal_provinces.xyz") is None


def test_file_metadata_reads_the_declaration():
    """Descriptions and units in the files come from the declaration (also for t CO2 columns)."""
    info = describe(["net_tco2", "driver_type", "p_grade_3"], stem="risk_provinces")
    declared = outputs_spec.column_info("net_tc", "risk_provinces")
    assert info["net_tco2"].unit == "t CO2 / yr" and info["net_tco2"].description.startswith(declared.description)
    assert info["driver_type"].description == outputs_spec.column_info("driver_type").description
    assert "grade 3" in info["p_grade_3"].description


@pytest.mark.parametrize("doc, section", [*outputs_spec.DOC_BLOCKS.items()])
def test_generated_blocks_of_the_docs_are_in_sync(doc, section):
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert outputs_spec.marker(section)[0] in text, f"{doc} lacks its generated block"
    assert outputs_spec.synced(text, section) == text, f"{doc} is out of date: run python -m lucr.outputs_spec write-docs"


def test_column_reference_is_in_sync():
    assert (ROOT / outputs_spec.COLUMNS_DOC).read_text(encoding="utf-8") == outputs_spec.markdown("columns"), \
        "docs/output_columns.md is out of date: run python -m lucr.outputs_spec write-docs"


def test_writers_take_their_names_from_the_declaration():
    from lucr.analysis.risk import output_stems
    from lucr.export import MANIFEST
    from lucr.report_html import REPORT

    assert outputs_spec.stem("risk_breaks", level="provinces") == "risk_provinces_breaks"
    assert outputs_spec.stem("run_summary", year=None) == "run_summary" and outputs_spec.stem("run_summary", year=2019) == "run_summary_2019"
    assert outputs_spec.stem("inventory_demand", level="provinces") == "inventory_provinces_eco_land_demand"
    assert output_stems("cities") == ["risk_cities", "risk_cities_breaks", "risk_cities_forecast"]
    assert (MANIFEST, REPORT) == ("lucr_outputs.json", "report.html")
    with pytest.raises(KeyError, match="no declared output"):
        outputs_spec.stem("nothing")


def test_a_renamed_statistics_output_is_still_declared(tmp_path):
    from lucr.config import CONFIG_DIR, load_config
    from lucr.runner import run

    cfg = load_config(CONFIG_DIR / "guizhou_seed001_inventory.yaml")
    cfg = cfg.model_copy(update={"statistics": cfg.statistics.model_copy(update={"output": "stats"}), "output": cfg.output.model_copy(update={"report": False})})
    result = run(cfg, out_dir=tmp_path / "out")
    assert (result.out_dir / "stats.csv").exists() and (result.out_dir / "risk_stats.csv").exists()
    check = outputs_spec.check_folder(result.out_dir)
    assert check.ok and check.files["risk_stats.csv"] == "risk" and check.files["stats_eco_land_demand.csv"] == "inventory_demand"


def test_parquet_in_row_groups_reads_as_the_whole_frame(tmp_path, monkeypatch):
    """Written a few rows at a time, the GeoParquet reads back as geopandas' own whole-frame file:
    same frame and types (a column null in the first rows keeps the whole column's type), the
    bounding box and geometry types of every row, field descriptions on every field."""
    import geopandas as gpd
    import pyarrow.parquet as pq
    import shapely

    from lucr import table_meta
    from lucr.table_meta import ColumnInfo

    frame = gpd.GeoDataFrame(
        {"unit_id": [f"u{i}" for i in range(10)], "note": [None] * 4 + ["a", "b", None, "c", "d", "e"], "net_tc": [float(i) for i in range(10)]},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(9)] + [shapely.multipolygons([shapely.box(50, 50, 51, 52)])], crs="EPSG:3857",
    )
    frame.attrs["crs"] = "EPSG:3857"  # as a gravity table's carry the CRS of their x/y
    monkeypatch.setattr(table_meta, "PARQUET_ROWS", 4)
    ours, theirs = tmp_path / "ours.parquet", tmp_path / "theirs.parquet"
    table_meta.write_parquet(frame, ours, {"net_tc": ColumnInfo("net_tc", "net flux", "sources minus sinks", "t C / yr")})
    frame.to_parquet(theirs, index=False)
    assert pq.ParquetFile(ours).metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(gpd.read_parquet(ours), gpd.read_parquet(theirs), check_exact=True)
    schema, reference = pq.read_schema(ours), pq.read_schema(theirs)
    assert schema.remove_metadata().equals(reference.remove_metadata())
    assert schema.metadata[b"geo"] == reference.metadata[b"geo"]  # bbox [0, 0, 51, 52], Polygon and MultiPolygon
    assert schema.metadata[b"PANDAS_ATTRS"] == reference.metadata[b"PANDAS_ATTRS"] and gpd.read_parquet(ours).attrs == frame.attrs
    assert schema.field("net_tc").metadata[b"unit"] == b"t C / yr"


def test_parquet_conversion_failing_after_a_slice_is_written_raises_its_error(tmp_path, monkeypatch):
    """A slice is written in a thread while the next converts: a conversion's error reaches the
    caller (not a closed writer's), once the write in flight has ended."""
    import threading

    import geopandas as gpd
    import geopandas.io._geoarrow as geoarrow
    import shapely

    from lucr import table_meta

    frame = gpd.GeoDataFrame({"unit_id": [f"u{i}" for i in range(10)]}, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(10)], crs="EPSG:3857")
    convert, calls = geoarrow.geopandas_to_arrow, []

    def failing_second(part, **kwargs):
        calls.append(len(part))
        if len(calls) == 2:
            raise ValueError("slice 2 cannot be converted")
        return convert(part, **kwargs)

    monkeypatch.setattr(table_meta, "PARQUET_ROWS", 4)
    monkeypatch.setattr(geoarrow, "geopandas_to_arrow", failing_second)
    before = set(threading.enumerate())
    with pytest.raises(ValueError, match="slice 2 cannot be converted"):
        table_meta.write_parquet(frame, tmp_path / "t.parquet", {})
    assert calls == [4, 4] and not set(threading.enumerate()) - before  # no writer thread left behind

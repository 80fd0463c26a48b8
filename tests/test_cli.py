"""The CLI end to end on the bundled sample: files, COG validity, documented columns."""

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from lucr.coefficients import load_table

LUCR = str(Path(sys.executable).parent / "lucr")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "lucr-output"
    proc = subprocess.run([LUCR, "run", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_cli_outputs_exist_and_summary_printed(cli_run):
    out, proc = cli_run
    names = {p.name for p in out.iterdir()}
    assert names == {
        "carbon_balance.tif", "carbon_balance.qml", "run_summary.json", "run.json", "lucr_outputs.json", "report.html", "risk_grade.tif", "risk_grade_probability.tif",
        *(f"legend.{ext}" for ext in ("gpkg", "csv", "parquet")),
        *(f"risk_{lvl}{t}.{ext}" for lvl in ("provinces", "cities") for t in ("", "_breaks") for ext in ("gpkg", "csv", "parquet")),
        *(f"zonal_{lvl}.{ext}" for lvl in ("provinces", "cities") for ext in ("gpkg", "csv", "parquet")),
        *(f"analysis_{lvl}_{t}.{ext}" for lvl in ("provinces", "cities") for t in ("moran", "lisa", "gravity", "gravity_ellipses") for ext in ("gpkg", "csv", "parquet")),
        *(f"analysis_{lvl}_summary.json" for lvl in ("provinces", "cities")),
    }
    assert "province totals" in proc.stdout and "贵州省" in proc.stdout
    assert "Risk of the provinces" in proc.stdout and "red warning" in proc.stdout
    assert "Inside the 34 provinces" in proc.stdout and "Whole raster, cells outside the units included" in proc.stdout
    assert "provinces: global Moran's I" in proc.stdout and "cities: LISA clusters" in proc.stdout
    assert "single pass over the land cover" in proc.stderr  # the progress bar


def test_cog_is_valid_with_bands_units_tiles_overviews(cli_run):
    out, _ = cli_run
    path = out / "carbon_balance.tif"
    valid, errors, warnings = cog_validate(str(path))
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.count == 3 and src.dtypes == ("float32",) * 3
        assert src.descriptions == ("source", "sink", "net")
        assert all(src.tags(b)["units"] == "t C / ha / yr" for b in (1, 2, 3))
        assert src.units == ("t C / ha / yr",) * 3  # GDAL unit type
        assert src.block_shapes[0] == (512, 512)
        assert src.compression.name.lower() in ("zstd", "deflate")
        assert src.overviews(1), "internal overviews"
        assert src.nodata != src.nodata  # NaN
        data = src.read(masked=False)
    # sources >= 0, sinks <= 0, net = source + sink wherever there is data
    import numpy as np

    valid_px = ~np.isnan(data[2])
    assert (data[0][valid_px] >= 0).all() and (data[1][valid_px] <= 0).all()
    np.testing.assert_array_equal(data[0][valid_px] + data[1][valid_px], data[2][valid_px])
    assert set(np.unique(data[2][valid_px]).round(4)) <= set(np.float32(load_table("igbp").coefs).round(4))
    # overviews (tiles copied, not re-encoded, by lucr.cog) hold the top-left cell of each block
    for level, factor in enumerate((2, 4)):
        with rasterio.open(path, overview_level=level) as ovr:
            assert ovr.shape == (-(-data.shape[1] // factor), -(-data.shape[2] // factor))
            np.testing.assert_array_equal(ovr.read(), data[:, ::factor, ::factor])


def test_tables_have_documented_columns_in_every_format(cli_run):
    out, _ = cli_run
    codes = load_table("igbp").codes
    documented = ["unit_id", "name", "parent_id", "level", "area_ha", "valid_fraction", *[f"area_ha_class_{c}" for c in codes], "source_tc", "sink_tc", "net_tc", "net_tc_per_ha", "cbc_landcover"]
    for stem, n in (("zonal_provinces", 34), ("zonal_cities", 370)):
        frames = {
            "gpkg": gpd.read_file(out / f"{stem}.gpkg", layer=stem),
            "parquet": gpd.read_parquet(out / f"{stem}.parquet"),
            "csv": pd.read_csv(out / f"{stem}.csv", dtype={"unit_id": str, "parent_id": str}),
        }
        for fmt, frame in frames.items():
            assert len(frame) == n, (stem, fmt)
            assert set(documented) <= set(frame.columns), (stem, fmt, set(documented) - set(frame.columns))
        pd.testing.assert_series_equal(frames["csv"]["net_tc"], frames["parquet"]["net_tc"], rtol=1e-9)
    cities = frames["csv"]
    assert set(cities["parent_id"]) <= set(pd.read_csv(out / "zonal_provinces.csv", dtype={"unit_id": str})["unit_id"])
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["levels"]["city"]["units"] == 370 and summary["coefficients_not_from_papers"]


def test_cli_legends_and_validate(sample_config):
    proc = subprocess.run([LUCR, "legends"], capture_output=True, text=True)
    assert proc.returncode == 0 and all(name in proc.stdout for name in ("igbp", "clcd", "worldcover", "cas_lucc"))
    proc = subprocess.run([LUCR, "validate", str(sample_config.source)], capture_output=True, text=True)
    assert proc.returncode == 0 and "config is valid" in proc.stdout and "370 units" in proc.stdout

"""A per-cell raster in place of a class parameter (methods.md §8): flux and stock rasters, by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from lucr.config import parse_config
from lucr.errors import InputFileError
from lucr.runner import run

TRANSFORM = Affine(100, 0, 0, 0, -100, 400)  # 1 ha cells, EPSG:6933 (equal area)
CODES = np.array([[1, 1, 2, 3], [1, 2, 2, 3], [3, 3, 1, 255]], np.uint8)  # plum_island legend: forest, built, other
COEF = {1: -0.644, 2: 55.8, 3: -0.021}


def _write(path, data, dtype, nodata, transform=TRANSFORM):
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype, crs="EPSG:6933", transform=transform, nodata=nodata)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype), 1)
    return path


@pytest.fixture
def inputs(tmp_path):
    _write(tmp_path / "lc.tif", CODES, "uint8", 255)
    nep = np.array([[-2.0, np.nan, 3.0, -9999], [-1.5, -9999, 10.0, 0.5], [-9999, -9999, -3.0, 7.0]])
    _write(tmp_path / "nep.tif", nep, "float32", -9999)
    gpd.GeoDataFrame({"uid": ["west", "east"]}, geometry=[box(0, 100, 200, 400), box(200, 100, 400, 400)], crs="EPSG:6933").to_file(tmp_path / "units.gpkg")
    return tmp_path, nep


def _expected(nep, cols=slice(None)):
    source = sink = 0.0
    for (i, j), code in np.ndenumerate(CODES[:, cols]):
        if code == 255:
            continue
        v = nep[:, cols][i, j]
        value = v if np.isfinite(v) and v != -9999 else COEF[int(code)]
        source += max(value, 0.0)
        sink += min(value, 0.0)
    return source, sink


def test_flux_raster_replaces_the_coefficient_where_it_has_a_value(inputs):
    d, nep = inputs
    cfg = parse_config({"landcover": {"path": "lc.tif"}, "legend": "plum_island", "flux_raster": {"path": "nep.tif"},
                        "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid"}], "output": {"tables": ["csv"]}}, d)
    result = run(cfg, out_dir=d / "o")
    source, sink = _expected(nep)
    assert result.summary["whole_raster"]["source_tc"] == pytest.approx(source, rel=1e-12) and result.summary["whole_raster"]["sink_tc"] == pytest.approx(sink, rel=1e-12)
    t = result.tables["unit"].set_index("unit_id")
    for uid, cols in (("west", slice(0, 2)), ("east", slice(2, 4))):  # cell centres x 50, 150 | 250, 350
        s, k = _expected(nep, cols)
        assert t.loc[uid, "source_tc"] == pytest.approx(s, rel=1e-12) and t.loc[uid, "sink_tc"] == pytest.approx(k, rel=1e-12)
    assert t.loc["west", "flux_raster_area_ha"] == pytest.approx(2.0)  # -2 and -1.5; NaN and -9999 fall back to the coefficient
    with rasterio.open(result.maps["carbon_balance"]) as src:
        net = src.read(3)
    expect = np.array([[-2.0, COEF[1], 3.0, COEF[3]], [-1.5, COEF[2], 10.0, 0.5], [COEF[3], COEF[3], -3.0, np.nan]], np.float32)
    np.testing.assert_array_equal(net, expect)  # 7.0 lies on a nodata cell of the land cover: not used


def test_flux_raster_in_t_co2_is_converted(inputs):
    d, nep = inputs
    cfg = parse_config({"landcover": {"path": "lc.tif"}, "legend": "plum_island", "flux_raster": {"path": "nep.tif", "unit": "t CO2 / ha / yr"},
                        "output": {"tables": ["csv"]}}, d)
    result = run(cfg, out_dir=d / "o")
    valid = np.isfinite(nep) & (nep != -9999) & (CODES != 255)
    coef_part = sum(COEF[int(c)] for c in CODES[~valid & (CODES != 255)])
    assert result.summary["whole_raster"]["net_tc"] == pytest.approx(nep[valid].sum() * 12 / 44 + coef_part, rel=1e-12)


def test_flux_raster_on_another_grid_is_refused(inputs):
    d, nep = inputs
    _write(d / "shifted.tif", nep, "float32", -9999, transform=Affine(100, 0, 50, 0, -100, 400))
    cfg = parse_config({"landcover": {"path": "lc.tif"}, "legend": "plum_island", "flux_raster": {"path": "shifted.tif"}}, d)
    with pytest.raises(InputFileError, match="the flux raster is on another grid") as err:
        run(cfg, out_dir=d / "o")
    assert "shifted.tif" in str(err.value) and "gdalwarp" in str(err.value)
    assert not (d / "o").exists() or not [p for p in (d / "o").iterdir() if not p.name.startswith(".")]


def test_stock_raster_replaces_the_pools_total(inputs):
    d, _ = inputs
    later = CODES.copy()
    later[0, 0] = 2  # forest -> built
    _write(d / "lc2.tif", later, "uint8", 255)
    density = np.array([[300.0, -9999, 80, 40], [250, 70, 60, 45], [30, 35, 280, 1]])
    _write(d / "dens.tif", density, "float32", -9999)
    (d / "pools.csv").write_text("lucode,c_above,c_below,c_soil,c_dead\n1,100,20,50,5\n2,5,1,20,0\n3,20,5,60,2\n")
    cfg = parse_config({"landcover": {"years": {2000: "lc.tif", 2010: "lc2.tif"}}, "legend": "plum_island",
                        "change": {"pools": "pools.csv", "stock_raster": {2000: "dens.tif", 2010: "lc2.tif"}}, "output": {"tables": ["csv"]}}, d)
    result = run(cfg, out_dir=d / "o")
    pools_total = {1: 175.0, 2: 26.0, 3: 87.0}

    def stock(codes, values):
        return sum(values[i, j] if values[i, j] != -9999 else pools_total[int(c)] for (i, j), c in np.ndenumerate(codes) if c != 255)

    st = result.change.tables["carbon_stock_grid"].set_index("year")
    assert st.loc[2000, "total_tc"] == pytest.approx(stock(CODES, density), rel=1e-12)
    # 2010's "stock raster" is the land cover itself (values 1-3 t C/ha, 255 its nodata): a check of the per-year keys
    assert st.loc[2010, "total_tc"] == pytest.approx(float(later[later != 255].sum()), rel=1e-12)
    assert st.loc[2000, "stock_raster_area_ha"] == pytest.approx(10.0)
    with rasterio.open(result.maps["carbon_stock_2000"]) as src:
        total, above = src.read(5), src.read(1)
    assert total[0, 1] == pytest.approx(pools_total[1]) and total[0, 0] == 300 and np.isnan(above[0, 0]) and above[0, 1] == 100

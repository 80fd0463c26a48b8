"""A projected equal-area grid (China Albers, 30 m, CLCD legend), one zone level, several overviews."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import box

from lucr.coefficients import load_table
from lucr.config import parse_config
from lucr.runner import run

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=WGS84 +units=m +no_defs"
H, W, X0, Y0 = 2600, 3100, 500_000.0, 3_000_000.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("albers")
    rng = np.random.default_rng(7)
    patches = rng.integers(1, 10, size=(H // 50 + 1, W // 50 + 1), dtype=np.uint8)
    codes = np.repeat(np.repeat(patches, 50, axis=0), 50, axis=1)[:H, :W]
    codes[rng.random((H, W)) < 0.01] = 0  # CLCD nodata
    profile = dict(driver="GTiff", width=W, height=H, count=1, dtype="uint8", crs=ALBERS, nodata=0,
                   transform=Affine(30, 0, X0, 0, -30, Y0), tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(d / "lc.tif", "w", **profile) as dst:
        dst.write(codes, 1)
    units = gpd.GeoDataFrame(
        {"uid": ["A", "B", "C"], "label": ["west", "east", "outside"]},
        geometry=[box(X0, Y0 - 30 * H, X0 + 30 * 1000, Y0), box(X0 + 30 * 1000, Y0 - 30 * 2000, X0 + 30 * W, Y0), box(X0 + 30 * 1000, Y0 - 30 * H - 9000, X0 + 30 * 2000, Y0 - 30 * 2000)],
        crs=ALBERS,
    ).to_crs(4326)  # stored in lon/lat: lucr reprojects to the raster CRS
    units.to_file(d / "units.gpkg", layer="units")
    return d, codes


def _run(d, chunks):
    cfg = parse_config({
        "landcover": {"path": "lc.tif"}, "legend": "clcd",
        "zones": [{"level": "unit", "path": "units.gpkg", "id": "uid", "name": "label"}], "output": {"map_extent": "raster"},
    }, d)
    return run(cfg, out_dir=d / f"out{chunks}", chunks=chunks)


def test_projected_run_against_numpy_counts(inputs):
    d, codes = inputs
    a, b = _run(d, 512), _run(d, 2048)
    table = load_table("clcd")
    unit = a.tables["unit"].set_index("unit_id")
    # unit A: columns 0..999 (box edges on cell edges, so the centre rule is exact); 0.09 ha per 30 m cell
    block = codes[:, :1000]
    for code in table.codes:
        assert unit.loc["A", f"area_ha_class_{code}"] == pytest.approx(np.count_nonzero(block == code) * 0.09, rel=1e-12)
    net = sum(np.count_nonzero(block == c.code) * 0.09 * c.coef for c in table.classes)
    assert unit.loc["A", "net_tc"] == pytest.approx(net, rel=1e-12)
    assert unit.loc["A", "valid_fraction"] == pytest.approx(np.count_nonzero(block) / block.size, rel=1e-12)
    # unit C reaches 9 km below the raster: that part counts in area_ha as no data
    assert unit.loc["C", "area_ha"] == pytest.approx(unit.loc["C", "polygon_area_ha"], rel=1e-6)
    assert unit.loc["C", "valid_fraction"] < 0.99
    assert a.summary["whole_raster"]["valid_area_ha"] == pytest.approx(np.count_nonzero(codes) * 0.09, rel=1e-12)
    for frame_a, frame_b in zip(a.tables.values(), b.tables.values()):
        assert frame_a.drop(columns="geometry").equals(frame_b.drop(columns="geometry"))
    cog = a.out_dir / "carbon_balance.tif"
    assert cog_validate(str(cog))[0]
    with rasterio.open(cog) as src:
        assert src.overviews(1) == [2, 4, 8]
        for level in range(3):
            with rasterio.open(cog, overview_level=level) as x, rasterio.open(b.out_dir / "carbon_balance.tif", overview_level=level) as y:
                assert np.array_equal(x.read().view(np.uint32), y.read().view(np.uint32))
        full = src.read(3)
        factors = src.overviews(1)
    for level, f in enumerate(factors):  # streamed (2x, 4x) and decimated from the 4x level (8x): the top-left cell of each block
        with rasterio.open(cog, overview_level=level) as ovr:
            assert np.array_equal(ovr.read(3), full[::f, ::f], equal_nan=True), f
    lut = np.full(256, np.nan, np.float32)
    for c in table.classes:
        lut[c.code] = c.coef
    assert np.array_equal(full, lut[codes], equal_nan=True)


def test_several_years_give_one_output_set_each(inputs, tmp_path):
    d, codes = inputs
    years = {2019: str(d / "lc.tif"), 2020: str(d / "lc.tif")}
    cfg = parse_config({"landcover": {"years": years}, "legend": "clcd", "zones": [{"level": "unit", "path": str(d / "units.gpkg"), "id": "uid"}]}, d)
    result = run(cfg, out_dir=tmp_path / "out")
    names = {p.name for p in result.outputs}
    for year in (2019, 2020):
        assert {f"carbon_balance_{year}.tif", f"zonal_units_{year}.csv", f"run_summary_{year}.json"} <= names
    a, b = (result.by_year[y].tables["unit"].drop(columns="geometry") for y in (2019, 2020))
    assert a.equals(b)


def test_years_on_different_grids_are_rejected(inputs, tmp_path):
    from lucr.errors import InputFileError
    from tests.conftest import SAMPLE_RASTER

    d, _ = inputs
    cfg = parse_config({"landcover": {"years": {2019: str(d / "lc.tif"), 2020: str(SAMPLE_RASTER)}}, "legend": "clcd"}, d)
    with pytest.raises(InputFileError, match="differs from that of lc.tif"):
        run(cfg, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

"""Bad inputs: each gives a one-paragraph error naming the file, the problem and the fix,
exit code 2, and leaves no output behind."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
import yaml
from shapely.affinity import translate

from lucr import cli
from tests.conftest import SAMPLE_CITIES, SAMPLE_PROVINCES, SAMPLE_RASTER

OUTPUTS = ("carbon_balance.tif", "zonal_provinces.gpkg", "zonal_provinces.csv", "zonal_cities.csv", "run_summary.json")


def base_config(tmp_path: Path, **changes) -> dict:
    cfg = {
        "landcover": {"path": str(SAMPLE_RASTER)},
        "legend": "igbp",
        "zones": [
            {"level": "province", "path": str(SAMPLE_PROVINCES), "layer": "provinces", "id": "adcode", "name": "name"},
            {"level": "city", "path": str(SAMPLE_CITIES), "layer": "cities", "id": "adcode", "name": "name", "parent": "province_adcode"},
        ],
        "output": {"dir": str(tmp_path / "out")},
    }
    cfg.update(changes)
    return cfg


def run_cli(tmp_path: Path, cfg: dict | None, *extra: str, capsys, command: str = "run", path: Path | None = None) -> tuple[int, str]:
    """``lucr <command> CONFIG`` in-process: its exit code and what it printed (stderr; and stdout for validate).

    ``cfg`` is written to ``tmp_path/config.yaml``; or give the ``path`` of a config file as it is.
    """
    if path is None:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    argv = sys.argv
    sys.argv = ["lucr", command, str(path), *(["--quiet"] if command == "run" else []), *extra]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    shown = captured.err if command == "run" else captured.err + captured.out
    return exc.value.code, " ".join(shown.split())


def assert_no_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], f"left behind: {left}"


def expect_error(tmp_path, cfg, capsys, *fragments, extra=()):
    code, err = run_cli(tmp_path, cfg, *extra, capsys=capsys)
    assert code == 2, err
    assert err.startswith("lucr: error:"), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert "Traceback" not in err
    assert_no_outputs(tmp_path)
    return err


def test_missing_raster(tmp_path, capsys):
    cfg = base_config(tmp_path, landcover={"path": str(tmp_path / "nope.tif")})
    expect_error(tmp_path, cfg, capsys, "nope.tif", "land-cover raster not found", "Fix:")


def test_not_a_raster(tmp_path, capsys):
    bogus = tmp_path / "landcover.tif"
    bogus.write_text("this is not a GeoTIFF\n")
    expect_error(tmp_path, base_config(tmp_path, landcover={"path": str(bogus)}), capsys, "landcover.tif", "not a raster GDAL can read")


def test_raster_without_crs(tmp_path, capsys):
    path = tmp_path / "nocrs.tif"
    with rasterio.open(SAMPLE_RASTER) as src:
        profile = src.profile | {"crs": None}
        data = src.read()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    expect_error(tmp_path, base_config(tmp_path, landcover={"path": str(path)}), capsys, "nocrs.tif", "no coordinate reference system", "gdal_edit.py -a_srs")


def test_float_raster_rejected(tmp_path, capsys):
    path = tmp_path / "float.tif"
    with rasterio.open(SAMPLE_RASTER) as src:
        profile = src.profile | {"dtype": "float32", "nodata": None}
        data = src.read().astype("float32")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    expect_error(tmp_path, base_config(tmp_path, landcover={"path": str(path)}), capsys, "float.tif", "8- or 16-bit integers", "gdal_translate -ot UInt16")


def _zones_file(tmp_path, frame, name="units.gpkg", layer="provinces"):
    path = tmp_path / name
    frame.to_file(path, layer=layer, driver="GPKG")
    return path


def _provinces_only(tmp_path, path, layer="provinces", **kw):
    return base_config(tmp_path, zones=[{"level": "province", "path": str(path), "layer": layer, "id": "adcode", "name": "name", **kw}])


def test_polygons_without_crs(tmp_path, capsys):
    frame = gpd.read_file(SAMPLE_PROVINCES).set_crs(None, allow_override=True)
    with warnings.catch_warnings():  # pyogrio >= 0.11 warns that the file it writes has no CRS: that is the point
        warnings.simplefilter("ignore", UserWarning)
        path = _zones_file(tmp_path, frame)
    expect_error(tmp_path, _provinces_only(tmp_path, path), capsys, "units.gpkg", "no coordinate reference system")


def test_polygons_do_not_overlap_raster(tmp_path, capsys):
    frame = gpd.read_file(SAMPLE_PROVINCES)
    frame["geometry"] = frame.geometry.apply(lambda g: translate(g, xoff=-150))  # into the Atlantic
    path = _zones_file(tmp_path, frame)
    expect_error(tmp_path, _provinces_only(tmp_path, path), capsys, "units.gpkg", "do not overlap the land-cover raster")


def test_empty_polygon_layer(tmp_path, capsys):
    frame = gpd.read_file(SAMPLE_PROVINCES).iloc[:0]
    path = _zones_file(tmp_path, frame)
    expect_error(tmp_path, _provinces_only(tmp_path, path), capsys, "units.gpkg", "the polygon layer is empty")


def test_missing_id_column(tmp_path, capsys):
    cfg = _provinces_only(tmp_path, SAMPLE_PROVINCES)
    cfg["zones"][0]["id"] = "code"
    expect_error(tmp_path, cfg, capsys, "china_provinces_lite.gpkg", "column(s) ['code'] not found", "adcode")


def test_codes_missing_from_coefficient_table(tmp_path, capsys):
    table = tmp_path / "table.csv"
    rows = "\n".join(f"{c},class {c},-0.1" for c in range(17) if c not in (13, 15))
    table.write_text(f"# nodata: 255\ncode,name,coef\n{rows}\n")
    cfg = base_config(tmp_path, legend=None, coefficients=str(table))
    del cfg["legend"]
    expect_error(tmp_path, cfg, capsys, "mcd12c1_2019_igbp_china.tif", "13 (6,882 cells)", "15 (1,968 cells)", "unknown_classes: nodata")
    assert "staging" not in " ".join(p.name for p in (tmp_path / "out").glob("*"))


def test_unknown_codes_as_nodata_warns_and_runs(tmp_path, caplog):
    from lucr.config import parse_config
    from lucr.runner import run

    table = tmp_path / "table.csv"
    rows = "\n".join(f"{c},class {c},-0.1" for c in range(17) if c != 13)
    table.write_text(f"# nodata: 255\ncode,name,coef\n{rows}\n")
    cfg = base_config(tmp_path, coefficients=str(table), unknown_classes="nodata")
    del cfg["legend"]
    result = run(parse_config(cfg, tmp_path))
    assert "treated as no data" in caplog.text and "13 (6,882 cells)" in caplog.text
    prov = result.tables["province"]
    assert "area_ha_class_13" not in prov.columns and (prov["valid_fraction"] < 1).any()
    assert result.summary["whole_raster"]["unknown_area_ha"] > 0


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("code,name,coef\n1,forest,-0.644\n1,forest again,-0.5\n", "duplicate class code 1 (rows 1 and 2)"),
        ("code,name,coef\nforest,forest,-0.644\n", "class code 'forest' (row 1) is not a number"),
        ("code,name,coef\n1,forest,minus half\n", "coef of class 1 is not a number"),
    ],
)
def test_bad_coefficient_table(tmp_path, capsys, body, fragment):
    table = tmp_path / "table.csv"
    table.write_text(body)
    cfg = base_config(tmp_path, coefficients=str(table))
    del cfg["legend"]
    expect_error(tmp_path, cfg, capsys, "table.csv", fragment)


def test_unknown_config_key_names_nearest(tmp_path, capsys):
    cfg = base_config(tmp_path, chunk=1024)
    expect_error(tmp_path, cfg, capsys, "config.yaml", "unknown key 'chunk'", "did you mean 'chunks'?")
    cfg = base_config(tmp_path)
    cfg["output"]["compres"] = "zstd"
    expect_error(tmp_path, cfg, capsys, "unknown key 'output.compres'", "did you mean 'compress'?")


def test_output_exists_without_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "carbon_balance.tif").write_bytes(b"previous run")
    code, err = run_cli(tmp_path, base_config(tmp_path), capsys=capsys)
    assert code == 2 and "already exist: carbon_balance.tif" in err and "--overwrite" in err
    assert (out / "carbon_balance.tif").read_bytes() == b"previous run"
    assert sorted(p.name for p in out.iterdir()) == ["carbon_balance.tif"]


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    """A failure after the pass (here: while writing the tables) publishes no output."""
    from lucr import runner as run_module
    from lucr.config import parse_config

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "write_frame", boom)
    with pytest.raises(KeyboardInterrupt):
        run_module.run(parse_config(base_config(tmp_path), tmp_path))
    assert_no_outputs(tmp_path)


def test_parent_ids_missing_fail_before_the_pass(tmp_path, capsys):
    cfg = base_config(tmp_path)
    cfg["zones"][1]["parent"] = "name"  # city names are not province ids
    expect_error(tmp_path, cfg, capsys, "china_cities_lite.gpkg", "parent id(s) of level 'city' are not ids of level 'province'")


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    cfg = base_config(tmp_path)
    cfg["output"]["dir"] = str(tmp_path / "afile")
    code, err = run_cli(tmp_path, cfg, capsys=capsys)
    assert code == 2 and "cannot create the output folder" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["run", "--bogus"], ["run", "x.yaml", "--chunks", "10"], []])
def test_usage_errors_have_no_traceback(argv, capsys):
    old = sys.argv
    sys.argv = ["lucr", *argv]
    try:
        with pytest.raises(SystemExit) as exc:
            cli.main()
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in captured.err + captured.out
    assert "Usage" in captured.err + captured.out


def test_repaired_polygon_keeps_only_its_area(tmp_path):
    """make_valid turns a spike into a line; only the polygon part may be rasterised."""
    from shapely.geometry import Polygon

    from lucr.config import parse_config
    from lucr.runner import run

    square = [(110, 30), (112, 30), (112, 32), (110, 32)]
    spiked = Polygon(square[:2] + [(112, 31), (115, 31), (112, 31)] + square[2:])  # a zero-width spike to 115 E
    assert not spiked.is_valid
    frame = gpd.GeoDataFrame({"adcode": ["1"], "name": ["spike"]}, geometry=[spiked], crs=4326)
    path = _zones_file(tmp_path, frame)
    result = run(parse_config(_provinces_only(tmp_path, path), tmp_path))
    expected = gpd.GeoDataFrame(geometry=[Polygon(square)], crs=4326)
    path2 = _zones_file(tmp_path, expected.assign(adcode="1", name="square"), name="square.gpkg")
    cfg2 = _provinces_only(tmp_path, path2)
    cfg2["output"]["dir"] = str(tmp_path / "out2")
    reference = run(parse_config(cfg2, tmp_path))
    assert result.tables["province"]["area_ha"].iloc[0] == reference.tables["province"]["area_ha"].iloc[0]


def test_nodata_value_that_is_a_class_warns(tmp_path, caplog):
    from lucr.config import parse_config
    from lucr.runner import run

    path = tmp_path / "nd0.tif"
    with rasterio.open(SAMPLE_RASTER) as src:
        profile, data = src.profile | {"nodata": 0}, src.read()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    cfg = _provinces_only(tmp_path, SAMPLE_PROVINCES) | {"landcover": {"path": str(path)}}
    run(parse_config(cfg, tmp_path))
    assert "nodata value 0 is class 'Water bodies'" in caplog.text and "466,304 cells" in caplog.text


def test_null_parent_ids_name_the_units(tmp_path, capsys):
    cities = gpd.read_file(SAMPLE_CITIES, layer="cities")
    cities.loc[cities.index[:3], "province_adcode"] = None
    path = _zones_file(tmp_path, cities, name="cities.gpkg", layer="cities")
    cfg = base_config(tmp_path)
    cfg["zones"][1]["path"] = str(path)
    ids = ", ".join(cities["adcode"].astype(str)[:3])
    expect_error(tmp_path, cfg, capsys, "cities.gpkg", "3 unit(s) of level 'city' have no parent id in column 'province_adcode'", ids, "Fix:")


def test_null_ids_name_the_features(tmp_path, capsys):
    frame = gpd.read_file(SAMPLE_PROVINCES)
    frame.loc[frame.index[[1, 4]], "adcode"] = None
    path = _zones_file(tmp_path, frame)
    expect_error(tmp_path, _provinces_only(tmp_path, path), capsys, "units.gpkg", "2 unit(s) have no id in column 'adcode' (feature(s) 2, 5)")


def test_null_geometry_names_the_unit(tmp_path, capsys):
    frame = gpd.read_file(SAMPLE_PROVINCES)
    frame.loc[frame.index[2], "geometry"] = None
    path = _zones_file(tmp_path, frame)
    unit = str(frame["adcode"].iloc[2])
    expect_error(tmp_path, _provinces_only(tmp_path, path), capsys, "units.gpkg", f"unit(s) {unit} have no geometry (null or empty)")


def _bowtie_units(tmp_path):
    from shapely.geometry import Polygon

    bowtie = Polygon([(110, 30), (112, 32), (112, 30), (110, 32)])  # self-intersecting at (111, 31)
    square = Polygon([(113, 30), (115, 30), (115, 32), (113, 32)])
    frame = gpd.GeoDataFrame({"adcode": ["bow", "sq"], "name": ["bowtie", "square"]}, geometry=[bowtie, square], crs=4326)
    return _zones_file(tmp_path, frame)


def test_self_intersecting_polygon_is_repaired_with_a_warning(tmp_path, caplog):
    from lucr.config import parse_config
    from lucr.runner import run

    path = _bowtie_units(tmp_path)
    with caplog.at_level("WARNING", logger="lucr"):
        result = run(parse_config(_provinces_only(tmp_path, path), tmp_path))
    message = next(r.getMessage() for r in caplog.records if "repaired" in r.getMessage())
    assert "repaired 1 invalid polygon(s) of level 'province'" in message and "bow (Self-intersection" in message
    assert "area 0 -> 2" in message  # the bowtie's signed shoelace area is 0; repaired: two triangles of 1 square degree
    assert result.tables["province"].set_index("unit_id").loc["bow", "polygon_area_ha"] > 0


def test_self_intersecting_polygon_refused_on_request(tmp_path, capsys):
    path = _bowtie_units(tmp_path)
    expect_error(tmp_path, _provinces_only(tmp_path, path, invalid="error"), capsys,
                 "units.gpkg", "1 invalid polygon(s) of level 'province': bow (Self-intersection", "ogr2ogr -makevalid")


def _cities_with(tmp_path, change):
    cities = gpd.read_file(SAMPLE_CITIES, layer="cities")
    cities = change(cities)
    path = _zones_file(tmp_path, cities, name="cities.gpkg", layer="cities")
    cfg = base_config(tmp_path)
    cfg["zones"][1]["path"] = str(path)
    return cfg


def test_city_outside_the_province_its_parent_id_names(tmp_path, capsys):
    """A Guizhou city (520100) labelled as Yunnan's (530000): Yunnan's figures would include it silently."""
    def relabel(c):
        c.loc[c["adcode"].astype(str) == "520100", "province_adcode"] = "530000"
        return c

    expect_error(tmp_path, _cities_with(tmp_path, relabel), capsys, "cities.gpkg",
                 "1 city unit(s) lie outside the province their parent id names: 520100 is 100.0 % outside 530000 (mostly in 520000)",
                 "520000 (", "nesting: warn")


def test_province_without_cities(tmp_path, capsys):
    expect_error(tmp_path, _cities_with(tmp_path, lambda c: c[c["province_adcode"].astype(str) != "520000"]), capsys,
                 "province unit(s) are not covered by their city units: 520000 (100.0 % uncovered, no units)")


def test_nesting_warn_policy_goes_on_and_says_so(tmp_path, caplog):
    from lucr.config import parse_config
    from lucr.runner import run

    cfg = _cities_with(tmp_path, lambda c: c[c["province_adcode"].astype(str) != "520000"])
    cfg["zones"][1]["nesting"] = "warn"
    with caplog.at_level("WARNING", logger="lucr"):
        result = run(parse_config(cfg, tmp_path))
    assert any("520000 (100.0 % uncovered, no units)" in r.getMessage() for r in caplog.records)
    assert result.tables["province"].set_index("unit_id").loc["520000", "valid_fraction"] == 0


def _vrt_with_a_missing_source(tmp_path) -> Path:
    with rasterio.open(SAMPLE_RASTER) as src:
        profile, t, h, w = src.profile, src.transform, src.height, src.width
        half = w // 2
        for i, (x, width) in enumerate([(0, half), (half, w - half)]):
            prof = profile | {"width": width, "transform": src.window_transform(rasterio.windows.Window(x, 0, width, h))}
            with rasterio.open(tmp_path / f"part{i}.tif", "w", **prof) as dst:
                dst.write(src.read(1, window=rasterio.windows.Window(x, 0, width, h)), 1)
        crs = src.crs.to_wkt()
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="1">part{i}.tif</SourceFilename><SourceBand>1</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{h}"/><DstRect xOff="{x}" yOff="0" xSize="{width}" ySize="{h}"/></SimpleSource>'
        for i, (x, width) in enumerate([(0, half), (half, w - half)])
    )
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}"><SRS>{crs}</SRS><GeoTransform>{t.c!r},{t.a!r},0,{t.f!r},0,{t.e!r}</GeoTransform>'
                   f'<VRTRasterBand dataType="Byte" band="1"><NoDataValue>255</NoDataValue>{sources}</VRTRasterBand></VRTDataset>')
    (tmp_path / "part1.tif").unlink()
    return vrt


def test_vrt_with_a_missing_source_names_it(tmp_path, capsys):
    vrt = _vrt_with_a_missing_source(tmp_path)
    cfg = base_config(tmp_path, landcover={"path": str(vrt)})
    expect_error(tmp_path, cfg, capsys, "mosaic.vrt", "1 source file(s) of the VRT do not exist", "part1.tif", "gdalbuildvrt")
    code, err = run_cli(tmp_path, cfg, capsys=capsys, command="validate")
    assert code == 2 and "part1.tif" in err and "Traceback" not in err, err


def test_validate_reads_a_truncated_raster_without_a_traceback(tmp_path, capsys):
    data = Path(SAMPLE_RASTER).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])  # the header survives, half the tiles do not
    code, err = run_cli(tmp_path, base_config(tmp_path, landcover={"path": str(cut)}), capsys=capsys, command="validate")
    assert code == 2 and "cut.tif" in err and "Traceback" not in err and "Fix:" in err, err


def test_validate_finds_what_the_run_would_stop_on(tmp_path, capsys):
    """Codes missing from the table (unknown_classes: error), and two dates on different grids."""
    (tmp_path / "two.csv").write_text("code,name,coef,ref,status\n1,forest,-0.6,test,user\n13,urban,50,test,user\n")
    code, err = run_cli(tmp_path, base_config(tmp_path, legend=None, coefficients=str(tmp_path / "two.csv")), capsys=capsys, command="validate")
    assert code == 2 and "land-cover codes missing from the coefficient table" in err, err
    other = tmp_path / "shifted.tif"
    with rasterio.open(SAMPLE_RASTER) as src:
        profile = src.profile | {"transform": src.transform @ src.transform.translation(1, 0)}
        with rasterio.open(other, "w", **profile) as dst:
            dst.write(src.read())
    cfg = base_config(tmp_path, landcover={"years": {2019: str(SAMPLE_RASTER), 2020: str(other)}})
    code, err = run_cli(tmp_path, cfg, capsys=capsys, command="validate")
    assert code == 2 and "shifted.tif" in err and "differs from that of" in err, err


def test_polygons_in_another_crs_are_reprojected(tmp_path):
    """Provinces in Web Mercator: reprojected to the grid's CRS, same figures (vertices round-trip; edges differ negligibly)."""
    from lucr.config import parse_config
    from lucr.runner import run

    frame = gpd.read_file(SAMPLE_PROVINCES)
    path = _zones_file(tmp_path, frame.to_crs(3857), name="mercator.gpkg")
    cfg = _provinces_only(tmp_path, path)
    ref_cfg = _provinces_only(tmp_path, SAMPLE_PROVINCES)
    ref_cfg["output"]["dir"] = str(tmp_path / "ref")
    got = run(parse_config(cfg, tmp_path)).tables["province"].set_index("unit_id")
    ref = run(parse_config(ref_cfg, tmp_path)).tables["province"].set_index("unit_id")
    for column in ("area_ha", "net_tc"):
        assert ((got[column] - ref[column]).abs() <= 1e-6 * ref[column].abs().max()).all(), column


def test_nesting_shares_hand_computed():
    """Shares against hand-computed areas: a child half over its parent's border is measured by
    the overlay; a child sharing the border up to rounding (1e-12 off) counts as inside whole."""
    import geopandas as gpd
    import shapely

    from lucr.io import ZoneLayer
    from lucr.nesting import measure

    parent = shapely.box(0, 0, 1000, 1000)
    children = [
        shapely.box(0, 0, 500, 1000 + 1e-12 * 1000),  # the parent's left half, its top edge off by rounding
        shapely.box(500, 0, 1000, 400),
        shapely.box(500, 400, 1000, 800),
        shapely.box(750, 800, 1250, 1000),  # 500 x 200, of which 250 x 200 outside: 50 %
    ]

    def layer(level, geoms, ids, parents):
        frame = gpd.GeoDataFrame({"unit_id": ids, "name": ids, "parent_id": parents}, geometry=geoms, crs="EPSG:3857")
        return ZoneLayer(level=level, frame=frame, geometry_grid_crs=frame.geometry, path=Path(f"{level}.gpkg"))

    coarse = layer("province", [parent], ["P"], [None])
    fine = layer("city", children, ["a", "b", "c", "d"], ["P"] * 4)
    report = measure(coarse, fine, tolerance=0.01)
    assert [(c, p) for c, p, _, _ in report.outside] == [("d", "P")]
    assert report.outside[0][2] == pytest.approx(0.5, rel=1e-12)
    # covered: 500,000 + 200,000 + 200,000 + 50,000 (d's part inside) of 1,000,000 m²: 5 % uncovered
    assert [(p, n) for p, _, n in report.uncovered] == [("P", 4)]
    assert report.uncovered[0][1] == pytest.approx(0.05, rel=1e-9)


def test_units_that_do_not_project_to_the_land_cover_crs_are_named(tmp_path):
    """A unit on the far side of an orthographic land cover projects to infinity: named, not passed to the kernels."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.errors import InputFileError
    from lucr.grid import Grid
    from lucr.io import read_zone_layer

    units = gpd.GeoDataFrame({"code": ["near", "far"]}, geometry=[shapely.box(0, 0, 10, 10), shapely.box(170, 0, 175, 5)], crs="EPSG:4326")
    path = _zones_file(tmp_path, units, name="units.gpkg", layer="units")
    grid = Grid(100, 100, from_origin(0, 2_000_000, 20_000, 20_000), CRS.from_string("+proj=ortho +lat_0=0 +lon_0=0"))
    with pytest.raises(InputFileError, match=r"unit\(s\) far have coordinates that do not project") as err:
        read_zone_layer(path, level="unit", id_col="code", name_col=None, parent_col=None, layer="units", grid=grid)
    assert "units.gpkg" in str(err.value)


@pytest.mark.parametrize("encoding, label", [("gbk", "GB18030"), ("utf-8", "UTF-8")])
def test_shapefile_without_cpg_reads_chinese_names(tmp_path, caplog, encoding, label):
    """A shapefile with no .cpg (nor a DBF language id): GDAL reads its text as Latin-1, which made
    GBK names mojibake. They are decoded as UTF-8, else GB18030, and the run says which."""
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.grid import Grid
    from lucr.io import read_zone_layer

    names = ["北京市", "上海市", "Macau"]
    units = gpd.GeoDataFrame({"code": ["a", "b", "c"], "name": names}, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)], crs="EPSG:4326")
    path = tmp_path / "units.shp"
    units.to_file(path, encoding=encoding)
    path.with_suffix(".cpg").unlink(missing_ok=True)
    with open(path.with_suffix(".dbf"), "r+b") as dbf:  # no language driver id either
        dbf.seek(29)
        dbf.write(b"\0")
    grid = Grid(10, 10, from_origin(0, 5, 0.5, 0.5), CRS.from_epsg(4326))
    with caplog.at_level("WARNING", logger="lucr"):
        layer = read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col=None, layer=None, grid=grid)
    assert layer.frame["name"].tolist() == names
    assert any(f"read as {label}" in r.getMessage() and "units.cpg" in r.getMessage() for r in caplog.records)
    path.with_suffix(".cpg").write_text("GBK" if encoding == "gbk" else "UTF-8")  # declared: read as it says, no warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="lucr"):
        layer = read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col=None, layer=None, grid=grid)
    assert layer.frame["name"].tolist() == names and not caplog.records

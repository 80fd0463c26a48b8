"""Opening land cover: chunks aligned to the file's tiles, VRT mosaics, nothing loaded eagerly."""

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from lucr.config import parse_config
from lucr.io import open_landcover
from lucr.runner import run
from tests.conftest import SAMPLE_RASTER

VRT_SOURCE = """  <SimpleSource>
      <SourceFilename relativeToVRT="1">{name}</SourceFilename>
      <SourceBand>1</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>
      <DstRect xOff="{x}" yOff="0" xSize="{w}" ySize="{h}"/>
    </SimpleSource>"""


def test_chunks_are_lazy_and_aligned_to_tiles():
    lc = open_landcover(SAMPLE_RASTER, chunks=600)  # the file has 256 x 256 tiles
    assert isinstance(lc.codes.data, da.Array)
    assert lc.codes.data.chunks[0][0] == 512 and lc.codes.data.chunks[1][0] == 512
    assert lc.grid.shape == (1016, 1253) and lc.nodata == 255


def test_vrt_mosaic_gives_the_same_tables(sample_config, exact_run, tmp_path):
    with rasterio.open(SAMPLE_RASTER) as src:
        profile, crs, t = src.profile, src.crs, src.transform
        half = src.width // 2
        parts = [(0, half), (half, src.width - half)]
        for i, (x, w) in enumerate(parts):
            prof = profile | {"width": w, "transform": src.window_transform(Window(x, 0, w, src.height))}
            with rasterio.open(tmp_path / f"part{i}.tif", "w", **prof) as dst:
                dst.write(src.read(1, window=Window(x, 0, w, src.height)), 1)
        sources = "\n".join(VRT_SOURCE.format(name=f"part{i}.tif", x=x, w=w, h=src.height) for i, (x, w) in enumerate(parts))
        vrt = f"""<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">
  <SRS>{crs.to_wkt()}</SRS>
  <GeoTransform>{t.c!r}, {t.a!r}, 0.0, {t.f!r}, 0.0, {t.e!r}</GeoTransform>
  <VRTRasterBand dataType="Byte" band="1">
    <NoDataValue>255</NoDataValue>
{sources}
  </VRTRasterBand>
</VRTDataset>"""
    (tmp_path / "mosaic.vrt").write_text(vrt)
    data = sample_config.model_dump(exclude={"source"}, mode="json") | {"landcover": {"path": str(tmp_path / "mosaic.vrt")}}
    data["output"]["dir"] = str(tmp_path / "out")
    result = run(parse_config(data, tmp_path))
    for level in ("province", "city"):
        pd.testing.assert_frame_equal(result.tables[level].drop(columns="geometry"), exact_run.tables[level].drop(columns="geometry"), check_exact=True)
    with rasterio.open(result.out_dir / "carbon_balance.tif") as a, rasterio.open(exact_run.out_dir / "carbon_balance.tif") as b:
        assert np.array_equal(a.read().view(np.uint32), b.read().view(np.uint32))


def test_striped_file_chunks_stay_bounded(tmp_path):
    path = tmp_path / "strips.tif"
    profile = dict(driver="GTiff", width=5000, height=300, count=1, dtype="uint8", crs="EPSG:3035", transform=rasterio.Affine(30, 0, 0, 0, -30, 0))
    with rasterio.open(path, "w", **profile) as dst:  # not tiled: 1-row strips as wide as the raster
        dst.write(np.ones((1, 300, 5000), np.uint8))
        assert dst.block_shapes[0][1] == 5000
    lc = open_landcover(path, chunks=1024)
    assert lc.codes.data.chunks[1][0] == 1024 and lc.codes.data.chunks[0][0] == 300


def test_exact_engine_reads_the_configured_band(sample_config, exact_run, tmp_path):
    """A 2-band raster whose band 2 is the sample: the exact engine must use band 2."""
    with rasterio.open(SAMPLE_RASTER) as src:
        profile, data = src.profile | {"count": 2}, src.read(1)
    with rasterio.open(tmp_path / "two.tif", "w", **profile) as dst:
        dst.write(np.full_like(data, 16), 1)  # band 1: all barren
        dst.write(data, 2)
    cfg = sample_config.model_dump(exclude={"source"}, mode="json") | {"landcover": {"path": str(tmp_path / "two.tif"), "band": 2}, "engine": "exact"}
    cfg["output"]["dir"] = str(tmp_path / "out")
    result = run(parse_config(cfg, tmp_path))
    pd.testing.assert_frame_equal(result.tables["city"].drop(columns="geometry"), exact_run.tables["city"].drop(columns="geometry"), check_exact=True)


def _units_in(tmp_path, name: str, **columns):
    import geopandas as gpd
    import shapely

    ring = [(0, 0), (3, 0), (3, 2), (1.5, 3), (0, 2)]
    geoms = [shapely.Polygon(ring), shapely.MultiPolygon([shapely.box(4, 0, 5, 1), shapely.box(6, 0, 7, 2)]),
             shapely.Polygon(shapely.box(0, 4, 8, 8).exterior.coords, [shapely.box(2, 5, 3, 6).exterior.coords])]
    frame = gpd.GeoDataFrame({"code": [11, 12, 13], "name": ["北京市", "上海市", "Macau"], **columns}, geometry=geoms, crs="EPSG:4326")
    path = tmp_path / name
    frame.to_file(path, engine="pyogrio")
    return frame, path


def test_units_read_through_arrow_equal_ogrs_reading_and_keep_the_files_wkb(tmp_path):
    """The Arrow route (GeoPackage, GeoJSON, a shapefile with .cpg) gives the frame OGR's feature-by-
    feature reading gives, and keeps the file's WKB, which the pass reads as it reads shapely's."""
    import geopandas as gpd
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.grid import Grid
    from lucr.io import read_zone_layer
    from lucr.runner import _zone_payload
    from lucr.zonal import ZonePayload, polygon_wkb

    grid = Grid(20, 20, from_origin(-1, 9, 0.5, 0.5), CRS.from_epsg(4326))
    for name in ("units.gpkg", "units.geojson", "units.shp"):
        frame, path = _units_in(tmp_path, name, other=[1.5, 2.5, 3.5])
        layer = read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col=None, layer=None, grid=grid)
        assert layer.frame["unit_id"].tolist() == ["11", "12", "13"] and layer.frame["name"].tolist() == frame["name"].tolist()
        assert layer.frame.geometry.geom_equals(frame.geometry).all() and layer.frame.crs == frame.crs  # written as MultiPolygons
        ogr = gpd.read_file(path, engine="pyogrio", columns=["code", "name"])
        assert shapely.equals_exact(layer.geometry_grid_crs.values, ogr.geometry.values, 0).all()
        assert layer.wkb_grid_crs is not None and (shapely.from_wkb(layer.wkb_grid_crs) == ogr.geometry.values).all()
        file_wkb = layer.wkb_grid_crs
        wkb, payload = _zone_payload(layer, grid)
        assert wkb is file_wkb and layer.wkb_grid_crs is None  # handed over, not held by the layer
        again = ZonePayload.from_wkb(polygon_wkb(ogr.geometry.values), grid)
        for a in ("u", "v", "ring_end", "ring_is_hole", "polygon_ring_end"):
            np.testing.assert_array_equal(getattr(payload, a), getattr(again, a))
    # reprojected to the grid's CRS, or repaired: not the file's polygons, so no file WKB
    projected = Grid(20, 20, from_origin(-1e5, 9e5, 5e4, 5e4), CRS.from_epsg(3857))
    layer = read_zone_layer(tmp_path / "units.gpkg", level="unit", id_col="code", name_col=None, parent_col=None, layer=None, grid=projected)
    assert layer.wkb_grid_crs is None and _zone_payload(layer, projected)[1].n_zones == 3
    bowtie = gpd.GeoDataFrame({"code": [1]}, geometry=[shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])], crs="EPSG:4326")
    bowtie.to_file(tmp_path / "bowtie.gpkg")
    layer = read_zone_layer(tmp_path / "bowtie.gpkg", level="unit", id_col="code", name_col=None, parent_col=None, layer=None, grid=grid)
    assert layer.wkb_grid_crs is None and layer.frame.geometry.is_valid.all()


def test_date_and_boolean_columns_kept_read_as_ogr_reads_them(tmp_path):
    """Arrow would give dates and nullable booleans as Python objects: a level that keeps such a
    column is read feature by feature (the types OGR's reading gives, as before)."""
    import geopandas as gpd
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.grid import Grid
    from lucr.io import read_zone_layer

    # GeoJSON: GDAL reads the text dates as a Date field (Arrow: date32, Python objects in pandas);
    # a boolean with a null (Arrow: objects; OGR's reading: floats)
    _, path = _units_in(tmp_path, "units.geojson", founded=["2020-01-01", "2021-06-30", "2022-12-31"], coastal=pd.array([True, None, False], dtype="boolean"))
    assert gpd.read_file(path, engine="pyogrio", use_arrow=True)["founded"].dtype == object  # what is avoided
    grid = Grid(20, 20, from_origin(-1, 9, 0.5, 0.5), CRS.from_epsg(4326))
    for keep in (["founded"], ["coastal"]):
        layer = read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col=None, layer=None, grid=grid, keep=keep)
        ogr = gpd.read_file(path, engine="pyogrio")
        assert layer.frame[keep[0]].dtype == ogr[keep[0]].dtype != object
        assert layer.frame[keep[0]].equals(ogr[keep[0]])
        assert layer.wkb_grid_crs is None
    layer = read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col=None, layer=None, grid=grid)
    assert layer.wkb_grid_crs is not None  # the date and boolean columns not asked for: not read


def test_a_missing_column_is_named_with_the_layers_columns(tmp_path):
    import pytest
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.errors import InputFileError
    from lucr.grid import Grid
    from lucr.io import read_zone_layer

    _, path = _units_in(tmp_path, "units.gpkg", other=[1, 2, 3])
    grid = Grid(20, 20, from_origin(-1, 9, 0.5, 0.5), CRS.from_epsg(4326))
    with pytest.raises(InputFileError, match=r"column\(s\) \['prov'\] not found \(columns: \['code', 'name', 'other'\]\)"):
        read_zone_layer(path, level="unit", id_col="code", name_col="name", parent_col="prov", layer=None, grid=grid)


def test_units_arrow_cannot_give_as_ogr_reads_them(tmp_path):
    """Curved polygons (OGR's reading makes them straight; GEOS reads no curves) and text that is
    not UTF-8 (the Arrow stream passes the file's bytes on) are read feature by feature, as before;
    a layer without geometry is refused with a message saying so."""
    import sqlite3
    import struct

    import geopandas as gpd
    import pyogrio
    import pytest
    import shapely
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    from lucr.errors import InputFileError
    from lucr.grid import Grid
    from lucr.io import read_zone_layer

    grid = Grid(20, 20, from_origin(-1, 9, 0.5, 0.5), CRS.from_epsg(4326))
    points = lambda p: struct.pack("<I", len(p)) + b"".join(struct.pack("<dd", *xy) for xy in p)  # noqa: E731
    circle = b"\x01" + struct.pack("<I", 8) + points([(0, 0), (1, 1), (2, 0), (1, -1), (0, 0)])  # CircularString
    curve_polygon = b"\x01" + struct.pack("<I", 10) + struct.pack("<I", 1) + circle
    path = tmp_path / "curved.gpkg"
    wkb = np.array([curve_polygon, shapely.to_wkb(shapely.box(4, 0, 5, 1))], dtype=object)
    pyogrio.raw.write(path, geometry=wkb, field_data=[np.array([1, 2])], fields=["code"], crs="EPSG:4326", driver="GPKG", geometry_type="Unknown")
    layer = read_zone_layer(path, level="unit", id_col="code", name_col=None, parent_col=None, layer=None, grid=grid)
    assert layer.frame.geom_type.tolist() == ["Polygon", "Polygon"] and layer.wkb_grid_crs is None
    assert layer.frame.geometry.iloc[0].area == pytest.approx(np.pi, rel=1e-2)  # the unit circle, in segments

    path = tmp_path / "gbk.gpkg"
    gpd.GeoDataFrame({"code": [1, 2], "nm": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)], crs=4326).to_file(path)
    with sqlite3.connect(path) as db:
        for (trigger,) in db.execute("select name from sqlite_master where type='trigger'").fetchall():
            db.execute(f"drop trigger {trigger}")
        db.execute("update gbk set nm = CAST(? AS TEXT) where fid = 1", ("北京市".encode("gbk"),))
    with pytest.raises(InputFileError, match="gbk.gpkg: the layer's text is not UTF-8"):
        read_zone_layer(path, level="unit", id_col="code", name_col="nm", parent_col=None, layer=None, grid=grid)

    path = tmp_path / "table.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"code": [1, 2]}), path, layer="table", driver="GPKG")
    with pytest.raises(InputFileError, match="table.gpkg: the layer has no geometry column"):
        read_zone_layer(path, level="unit", id_col="code", name_col=None, parent_col=None, layer=None, grid=grid)

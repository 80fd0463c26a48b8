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

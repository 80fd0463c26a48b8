"""Write results: the carbon-balance COG and the zonal tables, atomically.

The density map is streamed chunk by chunk into a tiled, compressed GeoTIFF (memory
bounded by one chunk per worker), then GDAL's COG driver adds internal overviews and
the cloud-optimised layout. Every output is first written inside a hidden staging
folder in the output directory and renamed into place only when the whole run has
succeeded, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from pipeline.errors import OutputExistsError
from pipeline.grid import Grid

TILE = 512
GDAL_THREADS = "ALL_CPUS"


class GeoTiffWindowWriter:
    """A ``dask.array.store`` target writing ``(band, rows, cols)`` regions into a GeoTIFF.

    It holds only the path, so it pickles to distributed workers; each write opens the
    file in update mode (serialised by the store lock).
    """

    def __init__(self, path: str | Path):
        self.path = str(path)

    def __setitem__(self, key, value: np.ndarray) -> None:
        bands, rows, cols = key
        window = Window.from_slices(rows, cols)
        indexes = list(range((bands.start or 0) + 1, (bands.stop or value.shape[0]) + 1))
        with rasterio.open(self.path, "r+", NUM_THREADS=GDAL_THREADS) as dst:
            dst.write(value, indexes=indexes, window=window)


def create_density_geotiff(path: Path, grid: Grid, band_names: tuple[str, ...], unit: str, compress: str, tags: dict[str, str]) -> None:
    """Create an empty tiled, compressed float32 GeoTIFF for the density bands (NaN nodata)."""
    profile = dict(
        driver="GTiff", width=grid.width, height=grid.height, count=len(band_names), dtype="float32",
        crs=grid.crs, transform=grid.transform, nodata=np.nan, tiled=True, blockxsize=TILE, blockysize=TILE,
        compress=compress.upper(), predictor=3, interleave="pixel", BIGTIFF="IF_SAFER", NUM_THREADS=GDAL_THREADS,
        SPARSE_OK=True,
    )
    if compress == "zstd":
        profile["ZSTD_LEVEL"] = 1
    else:
        profile["ZLEVEL"] = 1
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(**tags)
        for b, name in enumerate(band_names, start=1):
            dst.set_band_description(b, name)
            dst.update_tags(b, name=name, units=unit)


def finalize_cog(src: Path, dst: Path, compress: str) -> None:
    """Copy the streamed GeoTIFF to a Cloud-Optimized GeoTIFF with internal overviews.

    Overviews average the density (NaN ignored), so a zoomed-out pixel shows the mean
    flux density of the cells below it.
    """
    options = dict(
        COMPRESS=compress.upper(), PREDICTOR="YES", BLOCKSIZE=TILE, OVERVIEWS="AUTO", RESAMPLING="AVERAGE",
        NUM_THREADS=GDAL_THREADS, BIGTIFF="IF_SAFER", LEVEL=1,
    )
    rasterio.shutil.copy(str(src), str(dst), driver="COG", **options)


class StagedOutputs:
    """Stage outputs in ``<out>/.lucr-staging-*`` and rename them into ``<out>`` on commit.

    Used as a context manager: on an exception the staging folder is removed and no
    output is touched.
    """

    def __init__(self, out_dir: Path, names: list[str], overwrite: bool):
        self.out_dir = Path(out_dir)
        self.names = names
        existing = [n for n in names if (self.out_dir / n).exists()]
        if existing and not overwrite:
            raise OutputExistsError(
                f"output(s) already exist: {', '.join(existing)}", path=self.out_dir,
                fix="pass --overwrite to replace them, or choose another --out folder",
            )
        self.staging: Path | None = None

    def __enter__(self) -> "StagedOutputs":
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=".lucr-staging-", dir=self.out_dir))
        return self

    def path(self, name: str) -> Path:
        assert self.staging is not None
        return self.staging / name

    def scratch(self, name: str) -> Path:
        """A path in the staging folder for intermediate files that are never published."""
        return self.path(name)

    def commit(self) -> list[Path]:
        """Rename every staged output into place (``os.replace``: atomic per file)."""
        published = []
        for name in self.names:
            staged = self.path(name)
            if staged.exists():
                target = self.out_dir / name
                os.replace(staged, target)
                published.append(target)
        return published

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def write_table(frame: gpd.GeoDataFrame, stem: str, formats: list[str], staged: StagedOutputs) -> None:
    """Write one zonal table as GeoPackage, CSV (no geometry) and/or GeoParquet."""
    if "gpkg" in formats:
        frame.to_file(staged.path(f"{stem}.gpkg"), layer=stem, driver="GPKG", engine="pyogrio")
    if "csv" in formats:
        frame.drop(columns=frame.geometry.name).to_csv(staged.path(f"{stem}.csv"), index=False, float_format="%.10g")
    if "parquet" in formats:
        frame.to_parquet(staged.path(f"{stem}.parquet"), index=False)


def table_names(stem: str, formats: list[str]) -> list[str]:
    ext = {"gpkg": "gpkg", "csv": "csv", "parquet": "parquet"}
    return [f"{stem}.{ext[f]}" for f in formats]

"""Open inputs lazily: land-cover rasters as chunked xarray, admin units as GeoDataFrames.

Rasters are opened with rioxarray (``lock=False``) as dask arrays whose chunks are
whole multiples of the file's internal tiles, so a chunk read never decodes a tile
twice and no whole national grid is ever loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from rasterio.errors import RasterioIOError

from lucr.errors import InputFileError, MissingCRSError, NoOverlapError
from lucr.geos_bulk import gc_paused, geometries_from_wkb, threaded
from lucr.grid import Grid

SUPPORTED_DTYPES = ("uint8", "int8", "uint16", "int16")

log = logging.getLogger("lucr")


@dataclass(frozen=True)
class LandCover:
    """A land-cover raster opened lazily: the chunked codes, their grid and nodata."""

    codes: xr.DataArray  # (y, x), dask-backed integer class codes
    grid: Grid
    nodata: int | None
    path: Path
    year: int | None = None


#: Output tile side: chunks along a strip (blocks as wide as the raster) are multiples of it.
OUTPUT_TILE = 512


def _aligned(requested: int, block: int, total: int) -> int:
    """A chunk side that is a whole multiple of the file's block side (at most the raster).

    Along the width of a striped file (one block spans the raster) any side is aligned,
    so the requested side is kept (rounded to output tiles): a chunk never spans a
    whole national row of cells.
    """
    unit = block if block < total else OUTPUT_TILE
    return min(total, max(1, round(requested / unit)) * unit)


def raster_profile(path: str | Path, band: int | None = 1, *, what: str = "land-cover raster", key: str = "landcover.path", dtypes=SUPPORTED_DTYPES) -> dict:
    """Open ``path`` with rasterio and check what lucr needs of a land-cover raster (or of ``what``).

    ``band=None`` asks for the raster's only band: a raster of several bands is then
    refused (which band holds the codes is not for lucr to guess). Returns the rasterio
    profile plus ``block_shape`` and ``band``. Raises ``InputFileError`` /
    ``MissingCRSError`` with the file name and a fix.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{what} not found", path=path, fix=f"check '{key}' in the config")
    if path.is_dir():
        raise InputFileError("is a folder, not a raster", path=path, fix="give the path of a GeoTIFF, COG or VRT file")
    if path.stat().st_size == 0:
        raise InputFileError("is an empty file (0 bytes)", path=path, fix="the copy or download that made it failed: copy the raster again")
    try:
        with rasterio.open(path) as src:
            profile = dict(src.profile)
            if band is None and src.count > 1:
                names = ", ".join(f"{i} ({d or 'no description'})" for i, d in enumerate(src.descriptions, 1))
                raise InputFileError(
                    f"the raster has {src.count} bands ({names}) and the config does not say which holds the land-cover codes", path=path,
                    fix=f"set '{key.rsplit('.', 1)[0]}.band' in the config (e.g. 'band: 1'), or extract it with `gdal_translate -b 1 IN OUT`",
                )
            band = band or 1
            profile["band"] = band
            if band > src.count:
                raise InputFileError(f"has {src.count} band(s), band {band} was asked for", path=path, fix=f"set the band of '{key}' to an existing band")
            profile["block_shape"] = src.block_shapes[band - 1]
            profile["crs"] = src.crs
            profile["nodata"] = src.nodatavals[band - 1]
            dtype = src.dtypes[band - 1]
            sources = list(src.files[1:])  # a VRT's source files
    except IsADirectoryError:
        raise InputFileError("is a folder, not a raster", path=path, fix="give the path of a GeoTIFF, COG or VRT file") from None
    except RasterioIOError as exc:
        detail = str(exc).splitlines()[0].replace(str(path), path.name)
        with path.open("rb") as f:
            magic = f.read(4)
        if magic in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):  # a TIFF header: the file is damaged, not of another kind
            raise InputFileError(
                f"is a TIFF but cannot be read: the file is damaged or incomplete ({detail})", path=path,
                fix="copy or download it again and compare its size or checksum with the original; `gdalinfo -checksum FILE` reads every tile",
            ) from None
        raise InputFileError(f"not a raster GDAL can read ({detail})", path=path, fix="give a GeoTIFF, COG or VRT land-cover raster") from None
    missing = [s for s in sources if not s.startswith("/vsi") and "://" not in s and not Path(s).exists()]
    if missing:
        raise InputFileError(
            f"{len(missing)} source file(s) of the VRT do not exist: {', '.join(missing[:5])}", path=path,
            fix="restore them, or rebuild the VRT (gdalbuildvrt) from the files that exist",
        )
    if profile["crs"] is None:
        raise MissingCRSError(
            "the raster has no coordinate reference system", path=path,
            fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE` or `rio edit-info --crs EPSG:4326 FILE`",
        )
    if dtypes is not None and dtype not in dtypes:
        raise InputFileError(
            f"land-cover codes must be 8- or 16-bit integers, the raster is {dtype}", path=path,
            fix="convert it, e.g. `gdal_translate -ot UInt16 IN OUT` (class codes up to 65535)",
        )
    t = profile["transform"]
    if t.b != 0 or t.d != 0 or t.e >= 0:
        raise InputFileError("the raster grid is rotated or not north-up", path=path, fix="warp it to a north-up grid with `gdalwarp`")
    return profile


def no_data_error(path: Path, nodata: list) -> InputFileError:
    """The error for a land-cover raster whose every cell is no data (a failed export, a wrong band)."""
    return InputFileError(
        f"the raster holds no data: every cell is its nodata value ({', '.join(map(str, nodata))})", path=path,
        fix="check that it is the right file and band (`gdalinfo -stats FILE`); an export that failed writes only nodata",
    )


@dataclass(frozen=True)
class ValueRaster:
    """A per-cell value raster on the land-cover grid (e.g. t C / ha / yr), opened lazily."""

    values: xr.DataArray  # (y, x), dask-backed numbers
    nodata: float | None
    path: Path


def open_value_raster(path: str | Path, grid: Grid, chunks: tuple, *, band: int = 1, what: str, key: str) -> ValueRaster:
    """Open a per-cell value raster that must lie on ``grid``, chunked like the land cover (``chunks``: dask chunks).

    Raises ``InputFileError`` naming the file when it is missing, unreadable or on another grid.
    """
    path = Path(path)
    profile = raster_profile(path, band, what=what, key=key, dtypes=None)
    other = Grid(profile["height"], profile["width"], profile["transform"], profile["crs"])
    if (other.shape, other.transform, other.crs) != (grid.shape, grid.transform, grid.crs):
        raise InputFileError(
            f"the {what} is on another grid ({other.width} x {other.height}, {other.crs.to_string()}, origin {other.transform.c:.6g}, {other.transform.f:.6g}, "
            f"cell {other.transform.a:.6g}) than the land cover ({grid.width} x {grid.height}, {grid.crs.to_string()}, origin {grid.transform.c:.6g}, "
            f"{grid.transform.f:.6g}, cell {grid.transform.a:.6g})", path=path,
            fix="warp it onto the land-cover grid, e.g. gdalwarp -te <bounds> -tr <cell size> -t_srs <crs> -r average IN OUT",
        )
    data = rioxarray.open_rasterio(path, chunks={"band": 1, "y": chunks[0], "x": chunks[1]}, lock=False, masked=False, cache=False)
    nodata = profile.get("nodata")
    return ValueRaster(values=data.isel(band=band - 1, drop=True), nodata=None if nodata is None else float(nodata), path=path)


def open_weight_raster(path: str | Path, grid: Grid, chunks: tuple, *, band: int, resampling: str, what: str, key: str) -> ValueRaster:
    """Open a covariate raster on the land-cover ``grid``: as it is when it lies on the grid, else
    warped onto it (GDAL's warper through a ``WarpedVRT``: ``resampling``, float64, the source's
    nodata as NaN; read chunk by chunk like the land cover, no copy on disk)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    path = Path(path)
    profile = raster_profile(path, band, what=what, key=key, dtypes=None)
    other = Grid(profile["height"], profile["width"], profile["transform"], profile["crs"])
    if (other.shape, other.transform, other.crs) == (grid.shape, grid.transform, grid.crs):
        return open_value_raster(path, grid, chunks, band=band, what=what, key=key)
    if other.crs is None:
        raise InputFileError(f"the {what} has no CRS, so it cannot be resampled onto the land cover", path=path, fix="assign its CRS (gdal_edit.py -a_srs EPSG:xxxx)")
    log.info("%s %s: on another grid (%s), warped onto the land-cover grid (%s resampling)", what, path.name, other.crs.to_string(), resampling)
    with rasterio.open(path) as src, WarpedVRT(
        src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height, resampling=Resampling[resampling],
        dtype="float64", src_nodata=profile.get("nodata"), nodata=np.nan,
    ) as vrt:
        data = rioxarray.open_rasterio(vrt, chunks={"band": 1, "y": chunks[0], "x": chunks[1]}, lock=False, cache=False)
    return ValueRaster(values=data.isel(band=band - 1, drop=True), nodata=None, path=path)


def open_landcover(path: str | Path, chunks: int = 2048, band: int | None = None, year: int | None = None) -> LandCover:
    """Open a land-cover raster (GeoTIFF, COG or VRT) as a chunked, lazy ``DataArray``.

    Parameters
    ----------
    path : path
        Raster of integer class codes (8 or 16 bit).
    chunks : int
        Wanted chunk side in cells, rounded to a whole multiple of the file's tiles.
    band : int, optional
        1-based band index; ``None``: the raster's only band (several bands are refused).
    year : int, optional
        Year the land cover stands for (kept as an attribute).
    """
    path = Path(path)
    profile = raster_profile(path, band)
    band = profile["band"]
    block_h, block_w = profile["block_shape"]
    height, width = profile["height"], profile["width"]
    chunk_y = _aligned(chunks, block_h, height)
    chunk_x = _aligned(chunks, block_w, width)
    da = rioxarray.open_rasterio(path, chunks={"band": 1, "y": chunk_y, "x": chunk_x}, lock=False, masked=False, cache=False)
    codes = da.isel(band=band - 1, drop=True)
    nodata = profile.get("nodata")
    nodata = None if nodata is None or not np.isfinite(nodata) else int(nodata)
    grid = Grid(height, width, profile["transform"], profile["crs"])
    codes.attrs.update(year=year, source=str(path))
    return LandCover(codes=codes, grid=grid, nodata=nodata, path=path, year=year)


def check_same_grid(series: list[LandCover]) -> None:
    """Every date of a run on one grid (shape, transform, CRS), or an error naming the odd file."""
    first = series[0]
    for lc in series[1:]:
        if (lc.grid.shape, lc.grid.transform, lc.grid.crs) != (first.grid.shape, first.grid.transform, first.grid.crs):
            raise InputFileError(
                f"its grid ({lc.grid.width} x {lc.grid.height}, {lc.grid.crs.to_string()}) differs from that of {first.path.name}",
                path=lc.path, fix="warp all years of land cover onto one grid (gdalwarp -te ... -tr ... -t_srs ...)",
            )


@dataclass
class ZoneLayer:
    """Admin units of one level, with ids normalised to text and geometries in the grid CRS."""

    level: str
    frame: gpd.GeoDataFrame  # columns unit_id, name, parent_id, geometry (source CRS)
    geometry_grid_crs: gpd.GeoSeries
    path: Path
    #: WKB of ``geometry_grid_crs`` as the file gave it, if it is that (not repaired, not reprojected); see :meth:`take_wkb`
    wkb_grid_crs: np.ndarray | None = None

    def take_wkb(self) -> np.ndarray | None:
        """:attr:`wkb_grid_crs`, handed over once: the layer does not hold it for the rest of the run (84 MiB at 324,523 units)."""
        wkb, self.wkb_grid_crs = self.wkb_grid_crs, None
        return wkb


def data_layer(path: Path, layer: str | None, fix: str) -> str | None:
    """The layer to read: ``layer``, or the file's only data layer (QGIS's ``layer_styles`` table is not data).

    A file of several data layers without ``layer`` is refused with their names: which one
    holds the units is not for lucr to guess.
    """
    if layer is not None:
        return layer
    names = [n for n in pyogrio.list_layers(path)[:, 0].tolist() if n != "layer_styles"]
    if len(names) > 1:
        raise InputFileError(f"the file holds {len(names)} layers ({_listing(names)}) and the config does not say which", path=path, fix=fix)
    return names[0] if names else None


def read_zone_layer(
    path: str | Path, *, level: str, id_col: str, name_col: str | None, parent_col: str | None, layer: str | None, grid: Grid,
    invalid: str = "repair", keep: list[str] | tuple[str, ...] = (),
) -> ZoneLayer:
    """Read one level of admin polygons and reproject them to the grid's CRS.

    Ids (and parent ids) are kept as text so that codes like adcodes compare exactly.
    Invalid polygons are repaired with a warning naming each unit and its area change
    (``invalid="repair"``), or refused (``"error"``).
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError("admin-unit file not found", path=path, fix=f"check 'zones[{level}].path' in the config")
    try:
        layer = data_layer(path, layer, fix=f"add 'layer: <name>' to zone level '{level}' in the config")
        gdf, file_wkb = _read_units(path, layer, [c for c in dict.fromkeys((id_col, name_col, parent_col, *keep)) if c])
    except InputFileError:
        raise
    except UnicodeDecodeError as exc:  # GeoPackage, GeoJSON, FlatGeobuf: UTF-8 by their specifications
        raise InputFileError(
            f"the layer's text is not UTF-8 ({exc.reason} in {bytes(exc.object[:40])!r})", path=path,
            fix="save the layer again with UTF-8 text (QGIS 'Export > Save Features As' with encoding UTF-8; for a shapefile, a .cpg naming its encoding)",
        ) from None
    except Exception as exc:  # pyogrio raises DataSourceError / DataLayerError; all mean 'cannot read'
        raise InputFileError(
            f"not a vector layer GDAL can read ({str(exc).splitlines()[0]})", path=path,
            fix="give a GeoPackage, GeoParquet, Shapefile or GeoJSON of polygons (and 'layer' if it has several)",
        ) from None
    if len(gdf) == 0:
        raise InputFileError("the polygon layer is empty", path=path, fix="give a layer with at least one admin-unit polygon")
    if not _declares_encoding(path):
        gdf = _text_decoded(gdf, path)
    if gdf.crs is None:
        raise MissingCRSError("the polygon layer has no coordinate reference system", path=path, fix="set one, e.g. `ogr2ogr -a_srs EPSG:4326 OUT IN`")
    missing = [c for c in (id_col, name_col, parent_col, *keep) if c and c not in gdf.columns]
    if missing:
        cols = pyogrio.read_info(path, layer=layer)["fields"].tolist()  # only the columns asked for were read
        raise InputFileError(f"column(s) {missing} not found (columns: {cols})", path=path, fix=f"set 'id'/'name'/'parent'/'keep' of zone level '{level}' to existing columns")
    reserved = [c for c in keep if c in ("unit_id", "name", "parent_id", "level", "geometry")]
    if reserved:
        raise InputFileError(f"keep names column(s) {reserved} that lucr's tables already have", path=path, fix="rename those columns in the layer, or drop them from 'keep'")
    text = {col: gdf[col].astype(str) for col in dict.fromkeys(c for c in (id_col, name_col, parent_col) if c)}  # each column once
    blank = lambda col: gdf[col].isna().to_numpy() | (text[col].str.strip() == "").to_numpy()  # noqa: E731
    if blank(id_col).any():
        rows = (np.flatnonzero(blank(id_col)) + 1).tolist()
        raise InputFileError(
            f"{len(rows)} unit(s) have no id in column '{id_col}' (feature(s) {_listing(rows)})", path=path,
            fix=f"give every unit an id in '{id_col}', or remove those features",
        )
    ids = text[id_col]
    if parent_col and blank(parent_col).any():
        orphans = ids[blank(parent_col)].tolist()
        raise InputFileError(
            f"{len(orphans)} unit(s) of level '{level}' have no parent id in column '{parent_col}': {_listing(orphans)}", path=path,
            fix=f"fill '{parent_col}' with the id of each unit's parent, or drop 'parent' from the level to read it on its own",
        )
    dup = [] if ids.is_unique else ids[ids.duplicated()].unique().tolist()
    if dup:
        raise InputFileError(f"unit ids are not unique in column '{id_col}': {dup[:10]}", path=path, fix="give a column with one id per unit (dissolve multi-part units first)")
    missing_geometry = (gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()
    if missing_geometry.any():
        raise InputFileError(
            f"unit(s) {_listing(ids[missing_geometry].tolist())} have no geometry (null or empty)", path=path,
            fix="give those units their polygon, or remove them from the layer",
        )
    other = ~np.isin(shapely.get_type_id(np.asarray(gdf.geometry.values, dtype=object)), (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON))
    if other.any():
        kinds = gdf.geometry.geom_type
        found = ", ".join(f"{i} ({k})" for i, k in list(zip(ids[other], kinds[other]))[:10])
        raise InputFileError(f"the layer holds non-polygon geometries: {found}", path=path, fix="admin units must be polygons")
    repaired, n_repaired = _repaired(gdf.geometry.values, ids.array, path, level, invalid)
    if n_repaired:
        file_wkb = None  # a repaired polygon is not the file's
    geoms = gpd.GeoSeries(repaired, crs=gdf.crs)
    empty = ids[geoms.is_empty.to_numpy()].tolist() if n_repaired else []  # a repair may leave nothing; empty units were refused above
    if empty:
        raise InputFileError(f"units {empty[:10]} have no polygon area", path=path, fix="repair or drop these geometries")
    frame = gpd.GeoDataFrame(
        {
            # copied through Python strings: keeping the read's own Arrow arrays instead (no conversion) left
            # 42 MiB more resident at 324,523 units, though they hold 4 MiB each (the allocators' pages, not the data)
            "unit_id": ids.to_numpy(),
            "name": text[name_col].to_numpy() if name_col else ids.to_numpy(),
            "parent_id": text[parent_col].to_numpy() if parent_col else pd.array([None] * len(gdf), dtype="str"),
            **{c: gdf[c].to_numpy() for c in keep},
        },
        geometry=geoms.to_numpy(),
        crs=gdf.crs,
    )
    if frame.crs == grid.crs:
        in_grid = frame.geometry  # no copy
    else:
        with gc_paused():  # 324,523 units: 0.85-1.06 s against 1.41-1.53 s with the collector running
            in_grid = frame.geometry.to_crs(grid.crs)
    bounds = shapely.bounds(np.asarray(in_grid.values, dtype=object))  # (n, 4) minx, miny, maxx, maxy
    finite = np.isfinite(bounds).all(axis=1)
    if not finite.all():
        raise InputFileError(
            f"unit(s) {_listing(ids[~finite].tolist())} have coordinates that do not project to the land cover's CRS ({grid.crs}): "
            "they become infinite or undefined", path=path,
            fix="clip the units to the area that CRS covers, or give the land cover in a CRS that covers them",
        )
    left, bottom, right, top = grid.bounds
    (minx, miny), (maxx, maxy) = bounds[:, :2].min(axis=0), bounds[:, 2:].max(axis=0)  # all finite
    if not (minx < right and maxx > left and miny < top and maxy > bottom):
        raise _no_overlap_error(path, (minx, miny, maxx, maxy), grid.bounds)
    return ZoneLayer(level=level, frame=frame, geometry_grid_crs=in_grid, path=path, wkb_grid_crs=file_wkb if frame.crs == grid.crs else None)


def _read_units(path: Path, layer: str | None, columns: list[str]) -> tuple[gpd.GeoDataFrame, np.ndarray | None]:
    """The layer's ``columns`` (those it has) and polygons, and the polygons' WKB as the file gave it
    (``None`` when read otherwise).

    Read through GDAL's Arrow stream (a tenth of the time of feature-by-feature reading:
    0.06 s for 324,523 units, then 0.3 s to make their GEOS objects), whose WKB is kept for
    the pass (:class:`lucr.zonal.ZonePayload` reads it; converting back costs 0.3 s). Read
    feature by feature instead, as GDAL's OGR API gives it, where the Arrow stream would
    differ: a shapefile that does not declare its text encoding (decoded by
    :func:`_text_decoded`); date, time and boolean columns (object columns in Arrow); text
    that is not UTF-8 (the stream passes the file's bytes on; OGR's reading keeps them as
    Latin-1, or fails with a message); and curved geometries (which OGR's reading makes
    straight, and GEOS does not read).
    """
    if _declares_encoding(path):
        import pyarrow as pa

        meta, table = pyogrio.read_arrow(path, layer=layer, columns=columns)
        geometry = meta["geometry_name"] or "wkb_geometry"
        if geometry not in table.column_names:
            raise InputFileError("the layer has no geometry column", path=path, fix="give a layer of admin-unit polygons (not an attribute table)")
        attributes = table.drop_columns([geometry])
        if not any(_converts_otherwise(f.type) for f in attributes.schema):
            wkb = table.column(geometry).to_numpy()
            del table
            try:
                attributes.validate(full=True)  # UTF-8 text
                geometries = geometries_from_wkb(wkb)
            except (pa.ArrowInvalid, NotImplementedError, shapely.errors.GEOSException):  # curves: NotImplementedError
                pass
            else:
                return gpd.GeoDataFrame(attributes.to_pandas(), geometry=geometries, crs=meta["crs"]), wkb
    with gc_paused():
        return gpd.read_file(path, layer=layer, engine="pyogrio", columns=columns), None


def _converts_otherwise(arrow_type) -> bool:
    """Whether an Arrow column type converts to pandas otherwise than OGR's feature-by-feature reading does."""
    import pyarrow as pa

    return pa.types.is_temporal(arrow_type) or pa.types.is_boolean(arrow_type)


def _declares_encoding(path: Path) -> bool:
    """Whether the file says how its text is encoded: always, except a shapefile with neither a
    ``.cpg`` file nor a language driver id in its DBF header."""
    if path.suffix.lower() != ".shp" or any(path.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return True
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return True
    with open(dbf, "rb") as f:
        header = f.read(32)
    return len(header) < 32 or header[29] != 0


def _text_decoded(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Text of a shapefile that does not say its encoding, which GDAL read as ISO-8859-1.

    Chinese admin shapefiles without a ``.cpg`` are GBK more often than not, and GDAL's
    reading turns their names into Latin-1 mojibake. As for the text tables
    (:mod:`lucr.text_encoding`), the bytes are decoded as UTF-8, else GB18030 (both strict),
    and the run says which; text that is neither is kept as GDAL read it, with a warning.
    """
    columns = [c for c in gdf.columns if c != gdf.geometry.name and (gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c].dtype))]
    cells = {c: gdf[c].to_numpy(dtype=object) for c in columns}
    text = [v for values in cells.values() for v in values if isinstance(v, str) and not v.isascii()]
    if not text:
        return gdf
    try:
        raw = [v.encode("latin-1") for v in text]
    except UnicodeEncodeError:
        return gdf  # not Latin-1 as read: GDAL knew the encoding from elsewhere
    fix = f"add {path.with_suffix('.cpg').name} beside it holding the encoding's name (e.g. UTF-8, GBK or CP1252)"
    for encoding, label in (("utf-8", "UTF-8"), ("gb18030", "GB18030 (GBK)")):
        try:
            for b in raw:
                b.decode(encoding)
        except UnicodeDecodeError:
            continue
        gdf = gdf.copy()
        for c in columns:
            gdf[c] = pd.array([v.encode("latin-1").decode(encoding) if isinstance(v, str) and not v.isascii() else v for v in cells[c]], dtype=gdf[c].dtype)
        log.warning("%s: no .cpg file says how its text is encoded; read as %s (e.g. %r). If that is wrong, %s", path, label, raw[0].decode(encoding), fix)
        return gdf
    log.warning("%s: no .cpg file says how its text is encoded, and it is neither UTF-8 nor GB18030: kept as read (Latin-1). If names look wrong, %s", path, fix)
    return gdf


def _listing(items: list, limit: int = 10) -> str:
    """``a, b, c`` (and how many more)."""
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _repaired(geoms, ids: Sequence[str], path: Path, level: str, policy: str) -> tuple[np.ndarray, int]:
    """The geometries, the invalid ones repaired (``make_valid``) to their polygon parts only
    (make_valid may add lines or points), and how many were; valid ones are kept as they are, not copied.

    Each repair is reported (unit id, reason, area before and after: a self-intersecting
    ring's area is ill-defined, so the change can be large); ``policy="error"`` refuses instead.
    """
    out = np.asarray(geoms, dtype=object).copy()
    invalid = np.flatnonzero(~threaded(shapely.is_valid, out))
    if invalid.size == 0:
        return out, 0
    reasons = [shapely.is_valid_reason(g).split("[")[0] for g in out[invalid]]
    before = shapely.area(out[invalid])
    if policy == "error":
        found = ", ".join(f"{ids[i]} ({r})" for i, r in list(zip(invalid, reasons))[:10])
        raise InputFileError(
            f"{invalid.size} invalid polygon(s) of level '{level}': {found}", path=path,
            fix=f"repair them (QGIS 'Fix geometries', or `ogr2ogr -makevalid`), or set 'invalid: repair' on level '{level}'",
        )
    out[invalid] = shapely.make_valid(out[invalid])
    after = np.array([shapely.area(g) if g.geom_type != "GeometryCollection" else shapely.area(shapely.union_all([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")])) for g in out[invalid]])
    changes = "; ".join(
        f"{ids[i]} ({r.strip()}, area {b:.6g} -> {a:.6g}{f', {100 * (a - b) / b:+.1f} %' if b else ''})"
        for i, r, b, a in list(zip(invalid, reasons, before, after))[:10]
    )
    log.warning(
        "%s: repaired %d invalid polygon(s) of level '%s' (areas in the layer's units): %s%s "
        "(fix: repair them in the source, or set 'invalid: error' on the level to stop on them)",
        path, invalid.size, level, changes, f"; and {invalid.size - 10} more" if invalid.size > 10 else "",
    )
    for i in invalid:
        g = out[i]
        if g.geom_type == "GeometryCollection":
            out[i] = shapely.union_all([part for part in g.geoms if part.geom_type in ("Polygon", "MultiPolygon")])
    return out, invalid.size


def check_nesting(layers: list[ZoneLayer]) -> None:
    """Raise if a unit names a parent id that the next coarser level lacks."""
    for coarse, fine in zip(layers[:-1], layers[1:]):
        missing = sorted(set(fine.frame["parent_id"].to_numpy(dtype=object)) - set(coarse.frame["unit_id"].to_numpy(dtype=object)))
        if missing:
            raise InputFileError(
                f"{len(missing)} parent id(s) of level '{fine.level}' are not ids of level '{coarse.level}': {missing[:10]}",
                path=fine.path, fix=f"check the 'parent' column of level '{fine.level}' and the 'id' column of level '{coarse.level}'",
            )


def _no_overlap_error(path: Path, poly_bounds, grid_bounds) -> NoOverlapError:
    def fmt(b) -> str:
        return "(" + ", ".join(f"{v:.4g}" for v in b) + ")"

    return NoOverlapError(
        f"the polygons (bounds {fmt(poly_bounds)} in the raster CRS) do not overlap the land-cover raster (bounds {fmt(grid_bounds)})",
        path=path, fix="check that both files cover the same region and carry the right CRS",
    )

"""Write results: map products as COGs and the zonal tables, atomically.

Each map product (:class:`lucr.products.MapProduct`) and its 2x and 4x overviews are streamed chunk by chunk into tiled,
compressed GeoTIFFs (memory bounded by the chunks in flight); GDAL adds the coarser
overviews to the small 4x file and :mod:`lucr.cog` copies all tiles into the COG
layout without re-encoding them. Every output is first written inside a hidden staging
folder in the output directory and renamed into place only when the whole run has
succeeded, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from lucr.cog import Level, read_levels, read_tile_parts, write_cog
from lucr.errors import LucrError, OutputError, OutputExistsError
from lucr.grid import Grid
from lucr.products.base import MapProduct
from lucr.outputs_spec import filename

log = logging.getLogger("lucr")

TILE = 512
GDAL_THREADS = "ALL_CPUS"


class GeoTiffWindowWriter:
    """A ``dask.array.store`` target writing ``(band, rows, cols)`` regions into a GeoTIFF.

    Used for levels whose blocks do not start on tiles (the others go to
    :class:`TilePartsWriter`). On local threads it keeps one dataset open (created with
    :func:`map_profile`), so the creation options (codec level, GDAL's multithreaded
    encoder) apply; writes are serialised by the store lock. Pickled to distributed workers
    it carries only the path, and each worker reopens the file in update mode for each write.
    """

    def __init__(self, path: str | Path, profile: dict | None = None, tags: dict | None = None, band_tags: list[dict] | None = None, colormap: dict | None = None):
        self.path = str(path)
        self._dataset = None
        if profile is not None:
            self._dataset = rasterio.open(self.path, "w", **profile)
            self._dataset.update_tags(**(tags or {}))
            for b, bt in enumerate(band_tags or [], start=1):
                self._dataset.set_band_description(b, bt["name"])
                self._dataset.update_tags(b, **bt)
            self._dataset.units = [bt["units"] for bt in band_tags or []]  # GDAL unit type
            if colormap is not None:
                self._dataset.write_colormap(1, colormap)

    def __getstate__(self):
        return {"path": self.path, "_dataset": None, "closed": False}

    closed = False

    def __setitem__(self, key, value: np.ndarray) -> None:
        bands, rows, cols = key
        window = Window.from_slices(rows, cols)
        indexes = list(range((bands.start or 0) + 1, (bands.stop or value.shape[0]) + 1))
        if self.closed:  # the pass was cancelled (interrupt, error) and the file closed
            raise RuntimeError(f"{self.path}: writer closed")
        if self._dataset is not None:
            self._dataset.write(value, indexes=indexes, window=window)
            return
        with rasterio.open(self.path, "r+", NUM_THREADS=GDAL_THREADS) as dst:
            dst.write(value, indexes=indexes, window=window)

    def close(self) -> None:
        """Close the file; later writes raise. Hold the writer's store lock while calling it, so that
        no dask thread is inside a write (a GDAL dataset closed under a writer crashes)."""
        self.closed = True
        if self._dataset is not None:
            self._dataset.close()
            self._dataset = None


class TilePartsWriter:
    """The target of levels whose blocks start on tiles (local threads and clusters): no lock, no file shared between writers.

    Each block is written by the worker that computed it as its own tiled GeoTIFF,
    ``<path>.parts/<row_off>_<col_off>.tif``, with the map's profile (codec, level,
    predictor, tile size), so its tiles are the bytes one big file would hold; the COG
    assembly places them (:func:`lucr.cog.read_tile_parts`) next to the tags of the empty
    template ``<path>``. Blocks must start on tile boundaries (:meth:`aligned`). Workers
    need the output folder on storage they share with the client.
    """

    def __init__(self, path: str | Path, profile: dict):
        self.path = str(path)
        # parts carry tiles only: no palette, no CRS (a PROJ round trip per file); a transform (free)
        # keeps rasterio from warning, which a warnings filter cannot silence from dask's threads
        self.profile = {k: v for k, v in profile.items() if k not in ("photometric", "crs")}
        self.transform = self.profile.pop("transform", None) or Affine.identity()
        Path(self.parts_dir).mkdir(exist_ok=True)
        self._init_state()

    def _init_state(self) -> None:
        # writes in progress in this process, and whether the run is over (see close)
        self._idle = threading.Condition()
        self._writing = 0
        self._closed = False

    def __getstate__(self) -> dict:  # a worker's copy starts with a state of its own
        return {k: v for k, v in self.__dict__.items() if k not in ("_idle", "_writing", "_closed")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

    @property
    def parts_dir(self) -> str:
        return self.path + ".parts"

    @staticmethod
    def aligned(chunks: tuple[tuple[int, ...], ...], tile: int = TILE) -> bool:
        """Whether every block of ``(bands, rows, cols)`` chunks starts on a tile boundary."""
        return all(all(c % tile == 0 for c in dim[:-1]) for dim in chunks[1:])

    def __setitem__(self, key, value: np.ndarray) -> None:
        _, rows, cols = key
        row_off, col_off = rows.start or 0, cols.start or 0
        profile = {**self.profile, "height": value.shape[1], "width": value.shape[2], "transform": self.transform @ Affine.translation(col_off, row_off)}
        profile["NUM_THREADS"] = 1  # a worker's dask threads already fill its cores (measured: no slower than GDAL's pool)
        with self._idle:
            if self._closed:  # the run failed and its staging folder goes: a write now would leave a file behind
                raise RuntimeError(f"{self.path}: the run is over, tile parts are no longer written")
            self._writing += 1
        # written under a name of its own, then renamed: a block computed twice at once (a task run
        # again on a cluster while a worker it lost still runs it) leaves one whole part, not a mix
        part = f"{self.parts_dir}/{row_off}_{col_off}.tif"
        temporary = f"{self.parts_dir}/.{row_off}_{col_off}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with rasterio.open(temporary, "w", **profile) as dst:
                dst.write(value)
            os.replace(temporary, part)
        except RasterioIOError as exc:  # disk full, read-only: named after the map, as a write of the outputs
            Path(temporary).unlink(missing_ok=True)
            raise OSError(0, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.path) from exc
        finally:
            with self._idle:
                self._writing -= 1
                self._idle.notify_all()

    @property
    def writing(self) -> int:
        """Writes in progress in this process."""
        return self._writing

    def refuse(self) -> None:
        """Refuse further writes in this process (the run failed: its staging folder goes)."""
        with self._idle:
            self._closed = True

    def close(self, timeout_s: float = 60.0) -> bool:
        """Refuse further writes in this process and wait for those in progress; whether they all ended.

        After a failed chunk, dask's other threads may still be writing parts of theirs: the
        staging folder is removed only once they are done, so no part outlives it.
        """
        self.refuse()
        with self._idle:
            return self._idle.wait_for(lambda: self._writing == 0, timeout=timeout_s)


def tile_parts(path: str | Path) -> list[tuple[int, int, str]] | None:
    """The ``(row_off, col_off, path)`` part files a :class:`TilePartsWriter` wrote for ``path``, or None."""
    folder = Path(str(path) + ".parts")
    if not folder.is_dir():
        return None
    parts = []
    for f in sorted(folder.glob("*_*.tif")):
        row_off, col_off = f.stem.split("_")
        parts.append((int(row_off), int(col_off), str(f)))
    return parts


def _level(path: Path, dataset_tags: bool) -> Level:
    """The full-resolution level of a streamed map file (or of its template and parts)."""
    parts = tile_parts(path)
    return read_levels(path, dataset_tags=dataset_tags)[0] if parts is None else read_tile_parts(path, parts, dataset_tags)


def _predictor(compress: str, is_float: bool) -> int:
    """ZSTD goes without predictor (these patchy maps of few distinct values compress 3.6x smaller
    without it: 41 vs 149 MB for the 1e8-cell benchmark); DEFLATE keeps the floating-point
    predictor (3) for floats, as the COG convention asks, and horizontal differencing (2) for integers."""
    if compress == "zstd":
        return 1
    return 3 if is_float else 2


def map_profile(grid: Grid, product: MapProduct, compress: str) -> dict:
    """GeoTIFF profile of a streamed map product: its dtype and nodata, 512 tiles, fast codec level."""
    profile = dict(
        driver="GTiff", width=grid.width, height=grid.height, count=len(product.bands), dtype=product.dtype,
        crs=grid.crs, transform=grid.transform, nodata=product.nodata, tiled=True, blockxsize=TILE, blockysize=TILE,
        compress=compress.upper(), predictor=_predictor(compress, product.is_float), interleave="pixel", BIGTIFF="IF_SAFER",
        NUM_THREADS=GDAL_THREADS,
    )
    if product.colormap is not None:
        profile["photometric"] = "palette"
    profile["ZSTD_LEVEL" if compress == "zstd" else "ZLEVEL"] = 1
    return profile


def open_map_writer(path: Path, grid: Grid, product: MapProduct, compress: str) -> GeoTiffWindowWriter:
    """Create the streamed GeoTIFF of a map product and return its writer (close it after the pass)."""
    band_tags = [{"name": n, "units": product.units} for n in product.bands]
    from lucr import __version__

    tags = {"lucr_version": __version__, **product.tags}
    return GeoTiffWindowWriter(path, map_profile(grid, product, compress), tags, band_tags, product.colormap)


def overview_factors(grid: Grid) -> list[int]:
    """Overview decimation factors (2, 4, 8, ...) down to one that fits in a tile, as GDAL's COG AUTO."""
    factors: list[int] = []
    f = 1
    while -(-max(grid.height, grid.width) // f) > TILE:
        f *= 2
        factors.append(f)
    return factors


#: Overview factors streamed in the single pass (strided views of the same chunks; with
#: 2048-cell chunks their pieces are whole 512 tiles). Coarser levels are decimated from the last.
STREAMED_OVERVIEWS = (2, 4)


def finalize_cog(full: Path, overviews: dict[int, Path], dst: Path, grid: Grid, compress: str, is_float: bool = True) -> None:
    """Assemble the COG from the streamed full-resolution and overview GeoTIFFs.

    Overviews take one cell of each block (the top-left cell of each f x f block: streamed
    for 2x and 4x, decimated from the 4x level below them, :func:`write_decimated`), so they
    hold the table's exact coefficients and compress as well as the full resolution. No
    streamed tile is re-encoded: see :mod:`lucr.cog`.
    """
    factors = overview_factors(grid)
    streamed = [f for f in sorted(overviews) if f in factors]
    levels = []
    for f in streamed[:-1]:
        levels.append(_level(overviews[f], dataset_tags=False))
    sample = full  # the statistics' sample: the coarsest level
    if streamed:
        last = streamed[-1]
        last_path = overviews[last]
        if tile_parts(last_path) is not None:  # the coarser levels are decimated from one file: assemble it
            last_path = Path(str(last_path) + ".assembled.tif")
            write_cog([_level(overviews[last], dataset_tags=True)], last_path)
        coarser = [f // last for f in factors if f > last]
        levels += read_levels(last_path, dataset_tags=False)
        sample = last_path
        if coarser:
            paths = [Path(f"{last_path}.x{f}.tif") for f in coarser]
            write_decimated(last_path, coarser, paths, compress, is_float)
            levels += [read_levels(p, dataset_tags=False)[0] for p in paths]
            sample = paths[-1]
    if is_float:
        tag_statistics(full, sample)
    write_cog([_level(full, dataset_tags=True), *levels], dst)


def write_decimated(src_path: Path, factors: list[int], paths: list[Path], compress: str, is_float: bool) -> None:
    """Coarser overviews of a tiled GeoTIFF: the top-left cell of each ``f x f`` block for each factor,
    one file per level, as the streamed levels take them.

    The source is read one tile row at a time and each level written in whole tile rows, so
    memory holds a tile row of the source and one of each level. GDAL's ``build_overviews``
    (NEAREST) took 6.4 s here for the 4x level of 1e9 cells, a third of the run; this ~1.4 s.
    """
    with rasterio.open(src_path) as src:
        height, width, count, dtype = src.height, src.width, src.count, src.dtypes[0]
        profile = dict(
            driver="GTiff", count=count, dtype=dtype, nodata=src.nodata, tiled=True, blockxsize=TILE, blockysize=TILE,
            compress=compress.upper(), predictor=_predictor(compress, is_float), interleave="pixel", BIGTIFF="IF_SAFER", NUM_THREADS=GDAL_THREADS,
            **{"ZSTD_LEVEL" if compress == "zstd" else "ZLEVEL": 1},
        )
        try:
            colormap = src.colormap(1)  # a paletted map's levels keep its palette, as the streamed ones do
            profile["photometric"] = "palette"
        except ValueError:
            colormap = None
        with contextlib.ExitStack() as stack:
            outs = []
            for f, path in zip(factors, paths):  # the COG takes the full level's tags; a transform keeps rasterio from warning
                level = dict(profile, height=-(-height // f), width=-(-width // f), transform=src.transform @ Affine.scale(f))
                dst = stack.enter_context(rasterio.open(path, "w", **level))
                if colormap is not None:
                    dst.write_colormap(1, colormap)
                outs.append([f, dst, np.empty((count, TILE, dst.width), dtype), 0, 0])  # factor, file, tile row, rows held, rows written
            for row0 in range(0, height, TILE):
                block = src.read(window=Window(0, row0, width, min(TILE, height - row0)))
                for out in outs:
                    f, dst, buffer = out[0], out[1], out[2]
                    piece = block[:, (-row0) % f :: f, ::f]  # the rows of this block on the level's grid
                    done = 0
                    while done < piece.shape[1]:
                        take = min(TILE - out[3], piece.shape[1] - done)
                        buffer[:, out[3] : out[3] + take] = piece[:, done : done + take]
                        out[3] += take
                        done += take
                        if out[3] == TILE or out[4] + out[3] == dst.height:
                            dst.write(buffer[:, : out[3]], window=Window(0, out[4], dst.width, out[3]))
                            out[4] += out[3]
                            out[3] = 0


def tag_statistics(path: Path, sample: Path) -> None:
    """Write GDAL's ``STATISTICS_*`` band tags into ``path``, computed on the coarsest level of
    ``sample`` (at most a tile's worth of cells, one per block: ``STATISTICS_APPROXIMATE=YES``,
    as ``gdalinfo -approx_stats``), over the cells the map holds (NaN is no data)."""
    with rasterio.open(sample) as src:
        factors = src.overviews(1)
        shape = (src.count, max(1, src.height // factors[-1]), max(1, src.width // factors[-1])) if factors else (src.count, src.height, src.width)
        data = src.read(out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
        approximate = bool(factors) or sample != path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the template of tile parts has no georeferencing
        with rasterio.open(path, "r+") as dst:
            for b in range(data.shape[0]):
                v = data[b][np.isfinite(data[b])]
                if v.size == 0:
                    continue
                dst.update_tags(
                    b + 1, STATISTICS_MINIMUM=repr(float(v.min())), STATISTICS_MAXIMUM=repr(float(v.max())), STATISTICS_MEAN=repr(float(v.mean())),
                    STATISTICS_STDDEV=repr(float(v.std())), STATISTICS_VALID_PERCENT=repr(round(100 * v.size / data[b].size, 3)),
                    STATISTICS_APPROXIMATE="YES" if approximate else "NO",
                )


STAGING_PREFIX = ".lucr-staging-"


class StagedOutputs:
    """Stage outputs in ``<out>/.lucr-staging-<host>-<pid>-*`` and rename them into ``<out>`` on commit.

    Used as a context manager: on an exception the staging folder is removed and no
    output is touched; an output folder the run created is removed again if it stays
    empty. Staging folders of killed runs (their process gone, on this host) are removed
    when the next run starts, and a commit killed half-way (even by SIGKILL) is finished
    from its journal first, so the folder holds one run's complete set of outputs.
    """

    def __init__(self, out_dir: Path, names: list[str], overwrite: bool):
        self.out_dir = Path(out_dir)
        self.names = names
        if self.out_dir.is_dir():
            finish_killed_commit(self.out_dir)  # the folder as the killed run would have left it
        earlier = [n for n in read_manifest(self.out_dir) if n not in names]  # the last run's other outputs
        existing = [n for n in [*names, *earlier] if (self.out_dir / n).exists()]
        if existing and not overwrite:
            raise OutputExistsError(
                f"output(s) already exist: {', '.join(existing)}", path=self.out_dir,
                fix="pass --overwrite to replace them, or choose another --out folder",
            )
        self.staging: Path | None = None
        self.created_out_dir = False
        self._lock = None

    def __enter__(self) -> "StagedOutputs":
        try:
            self.created_out_dir = not self.out_dir.exists()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_folder(self.out_dir)
            remove_stale_staging(self.out_dir)
            self.staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{_HOST}-{os.getpid()}-", dir=self.out_dir))
        except OSError as exc:
            if self._lock is not None:
                self._lock.close()
            error = output_write_error(exc, self.out_dir)  # read-only, full, no permission
            raise error or OutputError(f"cannot create the output folder ({exc.strerror})", path=self.out_dir, fix="choose a writable --out folder") from None
        return self

    def path(self, name: str) -> Path:
        assert self.staging is not None
        return self.staging / name

    def commit(self) -> list[Path]:
        """Rename every staged output into place, all or nothing, and record them in the manifest.

        Each rename is atomic (``os.replace``); outputs it replaces are first moved
        aside, and put back if any rename fails. Files an earlier run wrote here (its
        manifest, :data:`MANIFEST`) that this run does not write are removed with them, so
        the folder never holds results of two runs; files lucr did not write are left alone.
        """
        previous = read_manifest(self.out_dir)
        stale = [n for n in previous if n not in self.names and (self.out_dir / n).is_file()]
        blocked = [n for n in self.names if (self.out_dir / n).is_dir()]
        if blocked:
            raise OutputError(f"output path(s) are folders: {', '.join(blocked)}", path=self.out_dir, fix="remove them or choose another --out folder")
        backup = self.path(".replaced")
        backup.mkdir()
        publish = [n for n in self.names if self.path(n).exists()]
        # the journal lets the next run finish this commit if the process dies inside it (SIGKILL)
        _write_json(self.out_dir / JOURNAL, {"host": _HOST, "pid": os.getpid(), "staging": self.staging.name, "publish": publish, "remove": stale + [n for n in self.names if n not in publish]})
        manifest = _write_json(self.path(MANIFEST), {"written_by": "lucr", "files": publish})  # written now: the renames need no space
        done: list[str] = []
        try:
            for name in stale:
                os.replace(self.out_dir / name, backup / name)
            for name in self.names:
                staged, target = self.path(name), self.out_dir / name
                if target.exists():  # an output of this kind not produced this time goes too: no stale files
                    os.replace(target, backup / name)
                if staged.exists():
                    os.replace(staged, target)
                    done.append(name)
        except OSError as exc:
            for name in reversed(done):
                os.replace(self.out_dir / name, self.path(name))
            for old in backup.iterdir():
                os.replace(old, self.out_dir / old.name)
            (self.out_dir / JOURNAL).unlink(missing_ok=True)
            raise OutputError(f"could not publish the outputs ({exc}); the previous files are back in place", path=self.out_dir) from None
        os.replace(manifest, self.out_dir / MANIFEST)
        (self.out_dir / JOURNAL).unlink()
        if stale:
            log.info("removed %d output(s) of an earlier run that this run does not write: %s", len(stale), ", ".join(stale))
        return [self.out_dir / n for n in done]

    def __exit__(self, exc_type, exc, tb) -> None:
        # a full disk, a quota, a read-only folder: said as such, not as a library's traceback
        # (classified before the staging folder is removed: its size is part of the evidence)
        error = output_write_error(exc, self.out_dir) if isinstance(exc, Exception) else None
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.out_dir / LOCK).unlink()
            self._lock.close()  # releases the lock
        if exc_type is not None and self.created_out_dir:
            with contextlib.suppress(OSError):
                self.out_dir.rmdir()  # only if empty
        if error is not None:
            raise error from None


_HOST = socket.gethostname().replace("-", "_")

#: The list of files the last run published in an output folder.
MANIFEST = filename("manifest")  # lucr_outputs.json (lucr.outputs_spec)
#: What a commit in progress publishes and removes (present only while it runs, or after a kill).
JOURNAL = ".lucr-commit.json"
#: Held (``flock``) by the run writing into a folder: a second run into it is refused.
LOCK = ".lucr-lock"


#: Free bytes under which a failed write is put down to a full disk whatever the library said.
NEARLY_FULL_BYTES = 8 << 20

_WRITE_FAULTS = {
    errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up", errno.EFBIG: "a file grew beyond the size this system allows",
    errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EIO: "an input/output error",
}


def failed_block_read(exc: BaseException) -> str | None:
    """GDAL's message for a block it could not read, from ``exc`` or the errors it chains, or None.

    rasterio raises ``Read failed. See previous exception for details.``; the chained GDAL
    error names the file and the block: ``lc.tif, band 1: IReadBlock failed at X offset 7,
    Y offset 3: TIFFReadEncodedTile() failed.`` (not across processes: a cluster's worker
    sends the error without its chain).
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if "IReadBlock failed" in text:
            return text.splitlines()[0]
        exc = exc.__cause__ or exc.__context__
    return None


def output_write_error(exc: BaseException, out_dir: Path) -> OutputError | None:
    """The user-facing error for a write that failed in ``out_dir`` (disk full, quota, read-only), or None.

    Libraries report these differently (``OSError`` with an errno, a rasterio or pyogrio
    error quoting GDAL's message, or a damaged file found later), so both the errno and
    the free space left on the output's file system are looked at.
    """
    if isinstance(exc, LucrError):
        return None
    filename = getattr(exc, "filename", None)
    if filename and not str(Path(filename).absolute()).startswith(str(Path(out_dir).absolute())):
        return None  # an input's problem, not the output's
    text = str(exc)
    reason = _WRITE_FAULTS.get(getattr(exc, "errno", None) or -1)
    for needle, what in (("No space left", errno.ENOSPC), ("Disk quota", errno.EDQUOT), ("Read-only file system", errno.EROFS)):
        if needle in text:
            reason = _WRITE_FAULTS[what]
    existing = next((p for p in [Path(out_dir), *Path(out_dir).absolute().parents] if p.exists()), None)  # a failed run removes the folder it made
    try:
        free = shutil.disk_usage(existing).free if existing else None
    except OSError:
        free = None
    from_io = isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("rasterio", "pyogrio", "pyarrow")
    if from_io and free is not None and free < NEARLY_FULL_BYTES and reason in (None, _WRITE_FAULTS[errno.EIO]):
        reason = _WRITE_FAULTS[errno.ENOSPC]  # e.g. GDAL's "Write failed", or a file GDAL could not finish
    if reason is None:
        return None
    room = f", {free / 2**20:,.1f} MiB free" if free is not None else ""
    where = f"writing {Path(filename).name}: " if filename else ""
    detail = (getattr(exc, "strerror", None) or text).splitlines()[0] if text else type(exc).__name__
    fix = {
        _WRITE_FAULTS[errno.EROFS]: "give a folder on a writable disk (--out DIR); then run again",
        _WRITE_FAULTS[errno.EACCES]: "give a folder you may write to (--out DIR), or ask for write access; then run again",
        _WRITE_FAULTS[errno.EIO]: "check the disk (`df -h`, the system log) and the file-size limit (`ulimit -f`), or write elsewhere (--out DIR); then run again",
        _WRITE_FAULTS[errno.EFBIG]: "raise the file-size limit (`ulimit -f unlimited`) or write elsewhere (--out DIR); then run again",
    }.get(reason, "free space (or ask for a larger quota), or give a folder with room for the outputs (--out DIR); then run again")
    return OutputError(
        f"writing the outputs failed: {reason} ({where}{detail}{room}); nothing was published and earlier outputs here are unchanged", path=out_dir, fix=fix,
    )


def _lock_folder(out_dir: Path):
    """Take the output folder's lock, or refuse: two runs publishing into one folder would mix their outputs."""
    handle = open(out_dir / LOCK, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise OutputError(
            f"another lucr run is writing into this folder ({holder})", path=out_dir,
            fix="wait for it to finish, or write to another folder (--out DIR)",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


def _write_json(path: Path, data: dict) -> Path:
    """Write ``path`` atomically (a temporary file renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def finish_killed_commit(out_dir: Path) -> bool:
    """Roll forward a commit whose process died (on this host) half-way: every output it was
    publishing is complete in its staging folder, so the set is finished as it would have been.
    Returns whether there was one."""
    try:
        journal = json.loads((Path(out_dir) / JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if journal.get("host") != _HOST or _alive(int(journal.get("pid", 0))):
        return False  # another host's, or a commit still running
    staging = Path(out_dir) / journal["staging"]
    for name in journal.get("publish", []):
        if (staging / name).exists():
            os.replace(staging / name, Path(out_dir) / name)
    for name in journal.get("remove", []):
        with contextlib.suppress(OSError):
            (Path(out_dir) / name).unlink()
    _write_json(Path(out_dir) / MANIFEST, {"written_by": "lucr", "files": journal.get("publish", [])})
    (Path(out_dir) / JOURNAL).unlink()
    shutil.rmtree(staging, ignore_errors=True)
    log.warning("%s: a run was killed while publishing its outputs; its publishing was completed now (%d files)", out_dir, len(journal.get("publish", [])))
    return True


def read_manifest(out_dir: Path) -> list[str]:
    """Names of the files the last run wrote into ``out_dir`` (none without a readable manifest)."""
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    files = data.get("files", []) if isinstance(data, dict) else []
    return [f for f in files if isinstance(f, str) and "/" not in f and f not in ("", ".", "..")]


def remove_stale_staging(out_dir: Path) -> None:
    """Remove the staging folders that runs killed on this host left in ``out_dir``.

    A folder whose run is alive, or was made on another host, is kept. A commit that a
    killed run left half-done is first finished (:func:`finish_killed_commit`).
    """
    finish_killed_commit(out_dir)
    for folder in Path(out_dir).glob(f"{STAGING_PREFIX}*"):
        parts = folder.name[len(STAGING_PREFIX):].split("-")
        if len(parts) < 3 or parts[0] != _HOST or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, left by an interrupted run (%.1f MB)", folder, size / 1e6)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_frame(
    frame: pd.DataFrame, stem: str, formats: list[str], path_of: Callable[[str], Path], *, csv_bom: bool = True, lang: str = "en", classes=None,
) -> None:
    """Write a table as GeoPackage, CSV (no geometry) and/or (Geo)Parquet at ``path_of(name)``.

    A plain DataFrame goes to the GeoPackage as an attribute table (no geometry column).
    CSVs start with a UTF-8 byte-order mark unless ``csv_bom`` is off (Excel then reads
    Chinese names right). The GeoPackage carries a title and description per column
    (``gpkg_data_columns``, shown by QGIS as aliases) and, for zonal tables, a default
    QGIS style (``layer_styles``); the Parquet file's schema metadata carries the same
    descriptions and the units (:mod:`lucr.table_meta`). ``classes`` (the coefficient
    table) names the class columns. ``xlsx`` is written per run, not here
    (:func:`lucr.xlsx.write_workbook`). A failed write raises ``OSError`` naming the file
    (the libraries' own errors, e.g. pyogrio's "Failed to commit transaction" on a full
    disk, say neither).
    """
    from lucr.table_meta import describe

    described = describe(frame.columns, classes=classes, lang=lang, stem=stem)
    for fmt in formats:
        if fmt == "xlsx":
            continue
        path = path_of(f"{stem}.{fmt}")
        try:
            _write_format(frame, stem, fmt, path, csv_bom, described)
        except OSError as exc:
            exc.filename = exc.filename or str(path)
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("pyogrio", "pyarrow"):
                raise
            raise OSError(errno.EIO, f"{type(exc).__name__}: {exc}", str(path)) from exc


def _write_format(frame: pd.DataFrame, stem: str, fmt: str, path: Path, csv_bom: bool, described) -> None:
    from lucr import table_meta

    geo = isinstance(frame, gpd.GeoDataFrame)
    if fmt == "gpkg":
        if geo:
            frame.to_file(path, layer=stem, driver="GPKG", engine="pyogrio")
        else:
            pyogrio.write_dataframe(frame, path, layer=stem, driver="GPKG")
        table_meta.annotate_geopackage(path, stem, described, styled=geo)
    elif fmt == "csv":
        (frame.drop(columns=frame.geometry.name) if geo else frame).to_csv(path, index=False, float_format="%.10g", encoding="utf-8-sig" if csv_bom else "utf-8")
    elif fmt == "parquet":
        table_meta.write_parquet(frame, path, described)


def table_names(stem: str, formats: list[str]) -> list[str]:
    return [f"{stem}.{f}" for f in formats if f != "xlsx"]  # xlsx: one workbook per run (lucr.xlsx)

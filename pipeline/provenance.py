"""Provenance of a run (``run.json``): what made these numbers, to reproduce and audit them.

Records the lucr version, the resolved config (paths relative to the config's folder),
every input file with its size and SHA-256 (rasters with their VRT sources and
overviews, shapefiles with their sidecars), the coefficient and parameter tables with
a digest of their *values* (the same table saved twice, or reformatted, has the same
digest), the versions of the libraries that computed the result, and the wall time.

Hashing reads every input once more. That is the second read of the land cover that
this module's purpose needs (an audit must know which bytes were used); it runs in a
background thread during the pass, when the file is in the page cache, and
``output.input_hashes: size`` skips it (size and modification time only).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

#: Libraries whose version can change a number or a file lucr writes.
PACKAGES = ("numpy", "numba", "dask", "xarray", "rioxarray", "rasterio", "pyogrio", "geopandas", "shapely", "pandas", "pyarrow", "esda", "libpysal", "mapclassify", "scipy")

_BLOCK = 8 << 20


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 8 MiB blocks (hashlib releases the GIL on each)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def table_digest(rows: list[tuple]) -> str:
    """SHA-256 of a table's values (e.g. ``(code, coef, status)`` rows), independent of its file's formatting."""
    return hashlib.sha256(json.dumps(sorted(rows), separators=(",", ":"), default=str).encode()).hexdigest()


def with_companions(path: Path) -> list[Path]:
    """The files a dataset is made of: a raster's VRT sources and overviews, a shapefile's sidecars."""
    path = Path(path)
    if path.suffix.lower() == ".shp":
        return [p for p in sorted(path.parent.glob(path.stem + ".*")) if p.is_file()]
    if path.suffix.lower() in (".tif", ".tiff", ".vrt", ".img", ".nc"):
        import rasterio

        try:
            with rasterio.open(path) as src:
                return [Path(f) for f in src.files if Path(f).is_file()]
        except rasterio.errors.RasterioIOError:
            pass
    return [path] if path.is_file() else []


class InputHashes:
    """Hash input files in a background thread while the run computes; :meth:`result` waits.

    A context manager: leaving it cancels the hashes not yet started.
    """

    def __init__(self, paths: list[Path], mode: str = "sha256"):
        files = list(dict.fromkeys(f.resolve() for p in paths for f in with_companions(p)))
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lucr-hash")
        self._futures: dict[Path, Future | None] = {f: self._pool.submit(sha256_file, f) if mode == "sha256" else None for f in files}
        self._pool.shutdown(wait=False)

    def __enter__(self) -> "InputHashes":
        return self

    def __exit__(self, *exc) -> None:
        """Drop the hashes not started (a failed or interrupted run does not wait for them)."""
        for future in self._futures.values():
            if future is not None:
                future.cancel()

    def result(self, base: Path) -> list[dict[str, Any]]:
        records = []
        for f, future in self._futures.items():
            stat = f.stat()
            record = {"path": _relative(f, base), "bytes": stat.st_size, "modified": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds")}
            if future is not None:
                record["sha256"] = future.result()
            records.append(record)
        return records


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows)
        return str(path)


def _relative_paths(value: Any, base: Path) -> Any:
    if isinstance(value, dict):
        return {k: _relative_paths(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_paths(v, base) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
        return _relative(Path(value), base)
    return value


def package_versions() -> dict[str, str]:
    import rasterio

    versions = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__, "proj": rasterio.__proj_version__ if hasattr(rasterio, "__proj_version__") else ""}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def run_record(*, config: Any, config_dir: Path, inputs: list[dict], tables: list[dict], started: float, outputs: list[str]) -> dict[str, Any]:
    """The content of ``run.json``."""
    from lucr import __version__

    resolved = _relative_paths(config.model_dump(mode="json"), config_dir)
    resolved["output"]["dir"] = "."  # where run.json lies; the folder may be moved
    return {
        "lucr_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 3),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "config": resolved,
        "paths_relative_to": "the config file's folder",
        "inputs": inputs,
        "tables": tables,
        "packages": package_versions(),
        "outputs": outputs,
    }

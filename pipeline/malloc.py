"""glibc malloc: freed memory given back to the OS between stages, and dask workers' settings during a run.

:func:`return_freed_memory` (``malloc_trim``) runs after the units are read, after the pass
and after the units' polygons are parked (:func:`lucr.zonal.geometries_parked`): glibc keeps freed memory in
its heaps, so the next stage would start from the last one's high-water mark (measured:
a 324,523-unit run held 270 MiB more during the tables, 200 MiB more during the pass).

dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (the
``distributed.nanny.pre-spawn-environ`` setting) so that freed memory goes back to
the operating system at once. Setting that variable also switches off glibc's dynamic
mmap threshold, so every array above 128 KiB is a fresh ``mmap`` whose pages the
kernel faults in and zeroes on first touch, and is unmapped again when freed. A chunk
of lucr's pass allocates tens of MiB of arrays: measured at 1e9 cells on a LocalCluster
of 2 processes, the pass took 19.9-25.1 s with dask's setting and 17.4-17.8 s with
glibc's own (``benchmarks/RESULTS.md``).

:func:`reuse_freed_memory` sets, on every worker whose environment has that variable,
the thresholds glibc's dynamic rule would reach by itself (mmap above 32 MiB, trim
above 64 MiB: freed chunk arrays are reused instead of faulted in again), and puts
the variable's values back after the run. Other workers (another libc, another OS,
thresholds chosen by the cluster's owner without dask's variable) are left alone.
``cluster.reuse_freed_memory: false`` turns this off.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any, ContextManager

from lucr.on_workers import changed_on_workers

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
REUSE_TRIM_BYTES = 64 << 20  # glibc's dynamic rule: twice the mmap threshold
REUSE_MMAP_BYTES = 32 << 20  # the largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
GLIBC_MMAP_DEFAULT_BYTES = 128 * 1024
DASK_VARIABLE = "MALLOC_TRIM_THRESHOLD_"


def _mallopt(trim_bytes: int, mmap_bytes: int) -> bool:
    """Set glibc's trim and mmap thresholds in this process; False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, trim_bytes)) and bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_bytes))


def _libc():
    """glibc, or None (another OS or libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # musl and other libcs
        return None


def return_freed_memory() -> bool:
    """Give the free pages of glibc's heaps back to the OS (``malloc_trim(0)``): whether any went back
    (always False without glibc).

    Arrow's memory pool (mimalloc or jemalloc, which ``malloc_trim`` does not reach) gives back
    what it keeps too, if pyarrow is loaded (a 324,523-unit layer read through GDAL's Arrow
    stream left 67 MiB in it for the rest of the run).
    """
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def tune_this_process() -> bool:
    """Reuse freed memory in this process if its environment set dask's trim threshold."""
    if DASK_VARIABLE not in os.environ:
        return False
    return _mallopt(REUSE_TRIM_BYTES, REUSE_MMAP_BYTES)


def restore_this_process() -> bool:
    """Back to the thresholds this process's environment gave it (as glibc read them at start)."""
    value = os.environ.get(DASK_VARIABLE)
    if value is None:
        return False
    try:
        trim = int(value)
        mmap = int(os.environ.get("MALLOC_MMAP_THRESHOLD_", GLIBC_MMAP_DEFAULT_BYTES))
    except ValueError:
        return False
    return _mallopt(trim, mmap)


def reuse_freed_memory(client: Any, enabled: bool = True) -> ContextManager[int]:
    """Tune the workers of ``client`` for the run; yields how many were tuned."""
    return changed_on_workers(client, tune_this_process, restore_this_process, "workers reuse freed memory", enabled)

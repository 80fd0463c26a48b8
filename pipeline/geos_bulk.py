"""GEOS work on many polygons at once: predicates over threads, geometries made without the cyclic GC.

Shapely lets the GIL go while GEOS evaluates a predicate, so one over many polygons takes
about 1/n of the time on n cores (``is_valid`` over 324,523 units: 0.10 against 0.19 s on
two). Functions that make Python objects (``from_wkb``: geometries, ``to_wkb``: bytes) hold it,
and gain nothing.

GEOS computes some things of a geometry lazily, on first use: a prepared geometry's indexes
(not safe from two threads at once: libgeos/geos#825), a collection's envelope. The slices
of rows are distinct, but a geometry object may appear in several rows (e.g. a prepared parent
in the rows of its children): ``groups`` keeps each group of rows sharing objects in one thread.

Shapely's geometries are tracked by Python's cyclic garbage collector, though they hold no
references: making 324,523 of them set off 6-7 full collections, each over every tracked
object (0.01-0.1 s each; 0.55 s more of full collections than a 300-unit run, for the units
read and given back after the pass, and ~0.5 s more when they are reprojected).
:func:`gc_paused` pauses the collector meanwhile.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import shapely

#: Fewest rows per thread: below it, a thread's start costs more than it saves.
MIN_ROWS_PER_THREAD = 20_000


def split_rows(n_rows: int, threads: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Bounds of up to ``threads`` slices of ``n_rows`` rows, ~``n_rows / threads`` each and
    split only from ``2 * MIN_ROWS_PER_THREAD`` rows on; no cut inside a run of equal
    ``groups`` values (sorted; a cut moves back to its group's first row)."""
    if groups is not None and np.any(groups[1:] < groups[:-1]):
        raise ValueError("groups must be sorted: a group split over two slices could share a geometry object between threads")
    parts = max(min(threads, n_rows // MIN_ROWS_PER_THREAD), 1)
    cuts = np.linspace(0, n_rows, parts + 1).astype(np.int64)
    if groups is not None and parts > 1:
        cuts[1:-1] = np.searchsorted(groups, groups[cuts[1:-1]], side="left")  # back to the group's first row
    return np.unique(cuts)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a container's or a job's share)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def threaded(func: Callable[..., np.ndarray], *arrays: np.ndarray, groups: np.ndarray | None = None, threads: int | None = None) -> np.ndarray:
    """``func(*arrays)`` (a shapely function over equal-length arrays), computed in slices of rows
    on up to ``threads`` threads (default: the cores this process may use). ``groups``: sorted
    group of each row, a group computed in one slice."""
    n_rows = len(arrays[0])
    bounds = split_rows(n_rows, usable_cores() if threads is None else threads, groups)
    if len(bounds) <= 2:
        return func(*arrays)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(max_workers=len(slices)) as pool:
        parts = list(pool.map(lambda rows: func(*(array[rows] for array in arrays)), slices))
    return np.concatenate(parts)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (and given back as it was): for making many
    geometries, among which it finds no cycles but which it would scan again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def geometries_from_wkb(wkb: np.ndarray) -> np.ndarray:
    """``shapely.from_wkb(wkb)`` with the cyclic garbage collector paused."""
    with gc_paused():
        return shapely.from_wkb(wkb)

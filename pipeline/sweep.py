"""The single pass: every chunk of land cover is read once and fed to all consumers.

Consumers are the density map (streamed to a GeoTIFF) and any number of declared
*reductions* (in the manner of exactextract's operations): each maps a chunk to a small
partial result, partials are combined pairwise in a tree, and the total is finalised.
The zone x class area cross-tab is the first reduction; transitions and stock pools
plug in the same way, so no later table needs a second pass over the raster.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import dask
import dask.array as da
import numpy as np
from rasterio.windows import Window

from lucr.grid import Grid


class Reduction(Protocol):
    """What one pass computes from each chunk: ``chunk`` -> ``combine`` (tree) -> ``finalize``."""

    name: str

    def chunk(self, codes: np.ndarray, window: Window) -> Any: ...

    def combine(self, parts: list[Any]) -> Any: ...

    def finalize(self, total: Any) -> Any: ...


def _chunk(red: Reduction, codes: np.ndarray, window: Window):
    return red.chunk(codes, window)


def _combine(red: Reduction, *parts):
    return red.combine(list(parts))


def _finalize(red: Reduction, total):
    return red.finalize(total)


def _combine_with(red_key):
    def combine(parts: list, key):
        return dask.delayed(_combine, pure=True)(red_key, *parts, dask_key_name=key)

    return combine


def _tree(parts: list, combine: Callable, name: str, split_every: int = 8):
    """Pairwise-style tree reduction of delayed partial results (``split_every`` at a time)."""
    level = 0
    while len(parts) > 1:
        parts = [combine(parts[i : i + split_every], (f"{name}-combine-{level}", i)) for i in range(0, len(parts), split_every)]
        level += 1
    return parts[0]


def build_sweep(codes: da.Array, grid: Grid, reductions: list[Reduction], maps: list[tuple[da.Array, Any]] = (), map_lock=None) -> list:
    """Dask objects that, computed together, make one pass over ``codes``.

    ``maps`` are ``(array, store target)`` pairs derived from ``codes`` (a map and its
    overviews). Returns ``[store_or_None, reduction totals...]``; compute them in one
    ``dask.compute`` call so the read tasks are shared.
    """
    blocks = codes.to_delayed()
    row_chunks, col_chunks = codes.chunks
    outs: list = []
    if maps:
        outs.append(da.store([a for a, _ in maps], [t for _, t in maps], lock=map_lock, compute=False, return_stored=False))
    else:
        outs.append(None)
    for red in reductions:
        # The reduction (with its polygons) is one graph key, shipped once per worker.
        red_key = dask.delayed(red, pure=True, name=f"lucr-{red.name}-spec")
        parts = [
            dask.delayed(_chunk, pure=True)(red_key, blocks[i, j], window, dask_key_name=(f"lucr-{red.name}-chunk", i, j))
            for (i, j), window in grid.windows(row_chunks, col_chunks)
        ]
        total = _tree(parts, _combine_with(red_key), f"lucr-{red.name}")
        outs.append(dask.delayed(_finalize, pure=True)(red_key, total, dask_key_name=f"lucr-{red.name}-total"))
    return outs

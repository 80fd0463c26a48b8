"""The single pass: every chunk of every layer is read once and fed to all consumers.

A :class:`Sweep` turns the run's lazy rasters (the land cover of every date, plus any
other per-cell raster on the same grid) into one :class:`~lucr.chunk.Chunk` task per
window. Consumers depend on those tasks only:

- **map products** (:class:`lucr.products.MapProduct`): a block function of a chunk, as a
  lazy ``(band, y, x)`` dask array that export streams to a GeoTIFF (with strided overviews);
- **reductions** (:class:`lucr.products.Reduction`, in the manner of exactextract's
  operations): ``chunk`` -> partial, partials combined in a tree, then ``finalize``.

Computed together in one ``dask.compute``, they share the read tasks and the chunk
tasks, so each chunk of each date is read once whatever the number of products.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from lucr.chunk import ChunkLayers, DateKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassSources:
    """The lazy rasters of one pass: land cover by date and other per-cell rasters, one grid and chunking."""

    dates: dict[DateKey, da.Array]
    rasters: dict[str, da.Array] = field(default_factory=dict)

    def arrays(self) -> list[da.Array]:
        return [*self.dates.values(), *self.rasters.values()]


def _build_chunk(layers: ChunkLayers, index, window, dates, date_blocks, raster_names, raster_blocks):
    return layers.build(index, window, dates, date_blocks, raster_names, raster_blocks)


def _map_block(product, chunk):
    return product.block(chunk)


def _write_block(product, writers, window, chunk):
    block = product.block(chunk)
    row_off, col_off = int(window.row_off), int(window.col_off)
    for factor, writer in writers:
        piece = block if factor == 1 else block[:, ::factor, ::factor]
        r, c = row_off // factor, col_off // factor
        writer[(slice(None), slice(r, r + piece.shape[1]), slice(c, c + piece.shape[2]))] = piece


def _fused_chunk(spec, window, chunk):
    reductions, writes = spec
    for product, writers in writes:
        _write_block(product, writers, window, chunk)
    return tuple(r.chunk(chunk) for r in reductions)


def _fused_window(spec, layers, index, window, dates, date_blocks, raster_names, raster_blocks):
    """:func:`_fused_chunk` of a bundle built in the same task (no other consumer needs it)."""
    return _fused_chunk(spec, window, layers.build(index, window, dates, date_blocks, raster_names, raster_blocks))


def _combine_all(spec, *parts):
    reductions, _ = spec
    return tuple(r.combine([p[k] for p in parts]) for k, r in enumerate(reductions))


def _finalize_all(spec, total):
    reductions, _ = spec
    return tuple(r.finalize(t) for r, t in zip(reductions, total))


def _reduce_chunk(reduction, chunk):
    return reduction.chunk(chunk)


def _combine(reduction, *parts):
    return reduction.combine(list(parts))


def _finalize(reduction, total):
    return reduction.finalize(total)


class Sweep:
    """The chunk tasks of one pass, and the maps and reductions built on them."""

    def __init__(self, sources: PassSources, layers: ChunkLayers):
        arrays = sources.arrays()
        chunks = arrays[0].chunks
        for a in arrays[1:]:
            if a.chunks != chunks:
                raise ValueError("every raster of a pass must share one chunking")  # the caller aligns them
        self.chunks = chunks
        self.grid = layers.grid
        token = tokenize(*[a.name for a in arrays], id(layers))
        self.name = f"lucr-chunk-{token}"
        layers_key = f"lucr-chunk-layers-{token}"
        dates, rasters = tuple(sources.dates), tuple(sources.rasters)
        dsk: dict[Any, Any] = {layers_key: layers}
        self.windows = dict(layers.grid.windows(*chunks))
        self._inputs = {  # the arguments that build the bundle of each window
            (i, j): (layers_key, (i, j), window, dates, [(a.name, i, j) for a in sources.dates.values()], rasters, [(a.name, i, j) for a in sources.rasters.values()])
            for (i, j), window in self.windows.items()
        }
        for (i, j), args in self._inputs.items():
            dsk[(self.name, i, j)] = (_build_chunk, *args)
        self.graph = HighLevelGraph.from_collections(self.name, dsk, dependencies=arrays)

    def _with_layer(self, name: str, dsk: dict) -> HighLevelGraph:
        layers = {**self.graph.layers, name: HighLevelGraph.from_collections(name, dsk, dependencies=[]).layers[name]}
        deps = {**self.graph.dependencies, name: {self.name}}
        return HighLevelGraph(layers, deps)

    def map(self, product) -> da.Array:
        """Lazy ``(band, y, x)`` array of a map product, one block per chunk."""
        name = f"lucr-map-{product.name}-{tokenize(self.name, product.name)}"
        spec = f"{name}-spec"
        dsk: dict[Any, Any] = {spec: product}
        for i, j in self.windows:
            dsk[(name, 0, i, j)] = (_map_block, spec, (self.name, i, j))
        chunks = ((len(product.bands),),) + self.chunks
        return da.Array(self._with_layer(name, dsk), name, chunks=chunks, dtype=np.dtype(product.dtype))

    def fused(self, reductions: list, writes: list[tuple[Any, list[tuple[int, Any]]]], split_every: int = 8, build: bool = False) -> Delayed:
        """Delayed tuple of the totals of ``reductions``, with the map ``writes`` done in the same task.

        One task per chunk computes every reduction's partial and writes every map block
        (``(product, [(factor, writer), ...])``: the block and its strided views for the
        overview factors, to lock-free targets such as :class:`lucr.export.TilePartsWriter`;
        chunk offsets must be multiples of every factor), so the chunk bundle never
        leaves the worker that built it: on a cluster nothing but the small partials moves.
        ``build=True`` builds the bundle in that task too, where no :meth:`map` consumes the
        chunks (one task per chunk fewer: on a cluster, no bundle for work stealing to move).
        """
        name = f"lucr-fused-{tokenize(self.name, [r.name for r in reductions], [p.name for p, _ in writes], build)}"
        spec = f"{name}-spec"
        dsk: dict[Any, Any] = {spec: (list(reductions), list(writes))}
        parts = []
        for (i, j), window in self.windows.items():
            dsk[(name, i, j)] = (_fused_window, spec, *self._inputs[(i, j)]) if build else (_fused_chunk, spec, window, (self.name, i, j))
            parts.append((name, i, j))
        return self._tree(name, dsk, spec, parts, _combine_all, _finalize_all, split_every)

    def reduce(self, reduction, split_every: int = 8) -> Delayed:
        """Delayed total of a reduction: per-chunk partials combined ``split_every`` at a time."""
        name = f"lucr-{reduction.name}-{tokenize(self.name, reduction.name)}"
        spec = f"{name}-spec"  # the reduction (with its tables) is one graph key, shipped once per worker
        dsk: dict[Any, Any] = {spec: reduction}
        parts = []
        for i, j in self.windows:
            dsk[(f"{name}-chunk", i, j)] = (_reduce_chunk, spec, (self.name, i, j))
            parts.append((f"{name}-chunk", i, j))
        return self._tree(name, dsk, spec, parts, _combine, _finalize, split_every)

    def _tree(self, name: str, dsk: dict, spec: str, parts: list, combine: Callable, finalize: Callable, split_every: int) -> Delayed:
        """Combine the partials ``parts`` ``split_every`` at a time, then finalize: the total as a Delayed."""
        level = 0
        while len(parts) > 1:
            combined = []
            for k in range(0, len(parts), split_every):
                key = (f"{name}-combine-{level}", k)
                dsk[key] = (combine, spec, *parts[k : k + split_every])
                combined.append(key)
            parts, level = combined, level + 1
        dsk[f"{name}-total"] = (finalize, spec, parts[0])
        return Delayed(f"{name}-total", self._with_layer(name, dsk), layer=name)


def compute(targets: dict[str, Any], *, client=None, progress: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Compute named dask objects in one pass (shared reads); results by name."""
    from contextlib import nullcontext

    names = list(targets)
    values = [targets[n] for n in names]
    with progress() if progress else nullcontext() as bar:
        # the scheduler is named by the caller's context: dask would otherwise import distributed to look for a client
        if client is None:
            results = dask.compute(*values)
        else:
            futures = client.compute(values)
            try:
                if hasattr(bar, "watch"):
                    bar.watch(futures)  # dask's local callbacks do not fire on a cluster
                results = client.gather(futures)
            except BaseException:
                if not _stop(client, futures):
                    log.warning("tasks of the failed pass still ran on the workers after %.0f s; the staging folder is removed regardless", STOP_TIMEOUT_S)
                raise
    return dict(zip(names, results))


#: How long a failed pass waits for its tasks still running on a cluster's workers (s).
STOP_TIMEOUT_S = 60.0


def _stop(client, futures, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Drop a failed pass's tasks and wait until no worker executes any of them; whether they all stopped.

    A task that already runs cannot be interrupted: it may be writing a map's tile part into
    the staging folder, which the caller removes next. The keys are taken from the scheduler
    (those of the optimized graph that ran, not the caller's) before the futures are released;
    the scheduler then forgets them at once, so the workers are asked which of them their
    threads still execute, until two polls in a row find none.
    """
    deadline, roots = time.monotonic() + timeout_s, [f.key for f in futures]
    try:
        # the graph travels on the client's batched stream: right after compute() (an early Ctrl-C)
        # the scheduler may not hold it yet, and tasks it starts then must be waited for too
        keys = client.run_on_scheduler(_graph_keys, roots=roots)
        while keys is None and time.monotonic() < deadline and any(f.status == "pending" for f in futures):
            time.sleep(0.05)
            keys = client.run_on_scheduler(_graph_keys, roots=roots)
        keys = set(keys or ())
        client.cancel(futures)  # this client's interest only: another client may want the same keys
    except Exception as exc:  # the scheduler went away: no task of the pass runs any more
        log.debug("stopping the failed pass's tasks: %s", exc)
        return True
    idle_polls, told = 0, False
    while time.monotonic() < deadline:
        try:
            answers = client.run(_executing, on_error="return")
        except Exception as exc:  # the scheduler went away
            log.debug("asking the workers for the failed pass's tasks: %s", exc)
            return True
        running = [k for a in answers.values() if not isinstance(a, BaseException) for k in a if k in keys]
        if running and not told:
            log.info("waiting for %d task(s) of the failed pass still running on the workers (up to %.0f s)", len(running), timeout_s)
            told = True
        idle_polls = 0 if running else idle_polls + 1
        if idle_polls == 2:  # a task sent just before the cancel would show in the second poll
            return True
        time.sleep(0.05)
    return False


def _graph_keys(dask_scheduler, roots: list) -> list[str] | None:
    """Every key the ``roots`` depend on, on the scheduler (run there); None while it lacks a root."""
    if any(k not in dask_scheduler.tasks for k in roots):
        return None
    seen: set = set()
    stack = [dask_scheduler.tasks[k] for k in roots]
    while stack:
        ts = stack.pop()
        if ts.key not in seen:
            seen.add(ts.key)
            stack.extend(ts.dependencies)
    return [str(k) for k in seen]


def _executing(dask_worker) -> list[str]:
    """Keys a worker's threads are executing, cancelled ones included (run on the worker)."""
    state = dask_worker.state
    return [str(ts.key) for ts in (*getattr(state, "executing", ()), *getattr(state, "long_running", ()))]

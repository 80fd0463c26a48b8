"""The single pass: every chunk of every layer is read once and fed to all consumers.

A :class:`Sweep` turns the run's lazy rasters (the land cover of every date, plus any
other per-cell raster on the same grid) into one :class:`~lucr.chunk.Chunk` task per
window. Consumers depend on those tasks only:

- **map products** (:class:`lucr.products.MapProduct`): a block function of a chunk, as a
  lazy ``(band, y, x)`` dask array that export streams to a GeoTIFF (with strided overviews);
- **reductions** (:class:`lucr.products.Reduction`, in the manner of exactextract's
  operations): ``chunk`` -> partial, partials combined in a tree, then ``finalize``.

Computed together in one ``dask.compute``, they share the read tasks and the chunk
tasks, so each chunk of each date is read once whatever the number of products. On a
cluster, :meth:`Sweep.batched` runs the same steps in batches of consecutive windows,
one task each (reads included), so the workers' threads do not wait for the scheduler
between chunks.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import dask
import dask.array as da
import dask.local
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


class _Reads:
    """The read tasks of each window of a batch, as one task argument dask does not look into;
    run where the batch runs, window by window, with the synchronous scheduler (the same read
    functions as the per-chunk graph, so the same values). One small graph per window: the
    cost of a window's reads does not grow with the batch."""

    def __init__(self, graphs: list[dict]):
        self.graphs = graphs

    def blocks(self, k: int, keys: list) -> list:
        # no callbacks: a progress bar's (global) would count these reads in a worker of the client's process
        return list(dask.local.get_sync(self.graphs[k], keys, callbacks=())) if keys else []


class _Cancelled(Exception):
    """A batch's task was cancelled (the pass failed or was interrupted): the worker drops this error."""


def _running_task() -> tuple[Any, Any]:
    """The ``dask.distributed`` worker running the calling task and the task's key; ``(None, None)`` elsewhere."""
    if "distributed" not in sys.modules:  # local threads: not imported for this
        return None, None
    from distributed import get_worker
    from distributed.worker import thread_state

    try:
        return get_worker(), thread_state.key
    except (ValueError, AttributeError):
        return None, None


def _cancelled(worker, key) -> bool:
    """Whether the scheduler let go of the running task ``key`` (the pass failed, or was interrupted)."""
    task = worker.state.tasks.get(key)
    return task is None or task.state in ("cancelled", "released", "forgotten")


def _fused_batch(spec, layers, reads: _Reads, inputs: list, topic: str, first: int):
    """:func:`_fused_window` of each window of a batch in turn, the partials combined as they come.

    On a cluster, each window done is an event of ``topic`` on the scheduler, its number in
    the pass (from ``first``), for the client's progress bar; a batch whose task was
    cancelled stops before its next window (a failed pass does not wait for the batch's end).
    """
    worker, key = _running_task()
    # partials merged as a binary counter merges carries (two of n windows, then two of 2n, ...):
    # each window's entries are merged log2(batch) times, not once per later window (the sparse
    # cross-tab of many zones grows with the batch)
    merged: list[tuple[int, Any]] = []  # (windows, partial), sizes strictly decreasing
    for k, (index, window, dates, date_keys, raster_names, raster_keys) in enumerate(inputs):
        if worker is not None and k and _cancelled(worker, key):
            raise _Cancelled(key)  # not a result: were the task resumed, the pass fails instead of summing None
        blocks = reads.blocks(k, [*date_keys, *raster_keys])
        chunk = layers.build(index, window, dates, blocks[: len(date_keys)], raster_names, blocks[len(date_keys) :])
        windows, part = 1, _fused_chunk(spec, window, chunk)
        del blocks, chunk  # one window's arrays at a time
        while merged and merged[-1][0] == windows:
            done, earlier = merged.pop()
            windows, part = windows + done, _combine_all(spec, earlier, part)
            del earlier
        merged.append((windows, part))
        del part
        if worker is not None:
            worker.log_event(topic, first + k)
    return merged[0][1] if len(merged) == 1 else _combine_all(spec, *(p for _, p in merged))


#: The most windows in one batch: bounds what a retried batch redoes, and the share of a pass
#: that a cluster still growing (its thread count taken at the start) leaves on few workers.
MAX_BATCH = 32


def batch_sizes(windows: int, threads: int, most: int = MAX_BATCH) -> list[int]:
    """Sizes of the batches of ``windows`` consecutive windows for ``threads`` worker threads.

    A variant of guided self-scheduling (Polychronopoulos & Kuck 1987, IEEE Trans. Comput.
    36(12), who take the remaining windows over the threads): each batch takes the
    remaining windows over twice the threads (at most ``most``), so batches shrink to
    single windows at the end and the threads finish within about one window of each other.
    """
    sizes, left, share = [], windows, 2 * max(1, threads)
    while left > 0:
        size = max(1, min(most, -(-left // share)))
        sizes.append(size)
        left -= size
    return sizes


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
        self.layers, self.read_graphs = layers, [a.__dask_graph__() for a in arrays]
        self.progress_topic = f"lucr-pass-{token}"  # events of the windows done (batched graph)
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

    def batched(self, reductions: list, writes: list[tuple[Any, list[tuple[int, Any]]]], threads: int, split_every: int = 8) -> Delayed:
        """:meth:`fused` (``build=True``) in batches of consecutive windows: the graph for a cluster.

        Each batch is one task that reads its windows itself (the read tasks of the rasters,
        run inside it), builds each bundle, writes the map blocks and combines the partials
        (e.g. 19 batches for 252 windows on 2 threads, instead of three tasks per window and
        a combine tree of 37 tasks). Measured on a 2-core LocalCluster at 1e9 cells
        (``benchmarks/RESULTS.md``), per-chunk tasks kept each thread waiting for the
        scheduler between tasks (~1.2x local threads); in batches the run is about as fast
        as on local threads (0.92-1.12x). Batch sizes shrink (:func:`batch_sizes`)
        and the largest are queued first (user priorities, which the scheduler's queue
        follows whatever dask's ordering), so the threads end together. Each window done is
        an event of :attr:`progress_topic` on the scheduler, for the progress bar.

        Every reduction must be ``order_free`` (:class:`lucr.products.base.Reduction`): a batch
        groups the partials otherwise than the per-chunk tree, which float sums would show in
        their last bits.
        """
        if loose := [r.name for r in reductions if not getattr(r, "order_free", False)]:
            raise ValueError(f"reductions whose sums depend on the grouping cannot run in batches: {', '.join(loose)}")
        name = f"lucr-batch-{tokenize(self.name, [r.name for r in reductions], [p.name for p, _ in writes], threads)}"
        spec, layers_key = f"{name}-spec", f"{name}-layers"
        dsk: dict[Any, Any] = {spec: (list(reductions), list(writes)), layers_key: self.layers}
        reads = HighLevelGraph.merge(*self.read_graphs)
        windows, parts, start = list(self.windows), [], 0
        for b, size in enumerate(batch_sizes(len(windows), threads)):
            inputs = [self._inputs[w][1:] for w in windows[start : start + size]]  # without the layers' key
            graphs = [dict(reads.cull({*date_keys, *raster_keys})) for _, _, _, date_keys, _, raster_keys in inputs]
            dsk[(name, b)] = (_fused_batch, spec, layers_key, _Reads(graphs), inputs, self.progress_topic, start)
            parts.append((name, b))
            start += size
        # the first (largest) batches first; combines before any batch not started; all at most 0,
        # the default, so that other clients' work on a shared cluster is not put behind the pass
        priority = {key: -1 - b for b, key in enumerate(parts)}
        with dask.annotate(priority=lambda key: priority.get(key, 0)):
            return self._tree(name, dsk, spec, parts, _combine_all, _finalize_all, split_every, standalone=True)

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

    def _tree(self, name: str, dsk: dict, spec: str, parts: list, combine: Callable, finalize: Callable, split_every: int, standalone: bool = False) -> Delayed:
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
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[]) if standalone else self._with_layer(name, dsk)
        return Delayed(f"{name}-total", graph, layer=name)


def compute(targets: dict[str, Any], *, client=None, progress: Callable[[], Any] | None = None, steps: tuple[str, int] | None = None) -> dict[str, Any]:
    """Compute named dask objects in one pass (shared reads); results by name.

    On a cluster, ``steps`` (an event topic and a count, e.g. :attr:`Sweep.progress_topic`
    and the windows of a :meth:`Sweep.batched` graph) makes the progress bar count those
    events instead of the scheduler's tasks."""
    from contextlib import nullcontext

    names = list(targets)
    values = [targets[n] for n in names]
    with progress() if progress else nullcontext() as bar:
        # the scheduler is named by the caller's context: dask would otherwise import distributed to look for a client
        if client is None:
            results = dask.compute(*values)
        else:
            follow = steps is not None and hasattr(bar, "follow")
            futures = []
            try:
                if follow:
                    bar.follow(client, *steps)  # subscribed before the tasks exist: no event is missed
                futures = client.compute(values)
                if hasattr(bar, "watch") and not follow:
                    bar.watch(futures)  # dask's local callbacks do not fire on a cluster
                results = client.gather(futures)
            except BaseException:
                if not _stop(client, futures):
                    log.warning("tasks of the failed pass still ran on the workers after %.0f s; the staging folder is removed regardless", STOP_TIMEOUT_S)
                raise
            finally:
                if follow:
                    try:
                        client.unsubscribe_topic(steps[0])
                    except Exception as exc:  # e.g. the client closed: the pass's own error is the one to see
                        log.debug("unsubscribing from the pass's progress events: %s", exc)
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

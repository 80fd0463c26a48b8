"""dask workers' statistical profiler, paused while lucr's pass runs on them.

Every ``dask.distributed`` worker samples the Python stacks of the threads running its
tasks every 10 ms (``distributed.worker.profile.interval``) for the dashboard's profile
page. Each sample takes the GIL from the task thread and walks its frames. Measured on a
LocalCluster of 2 processes x 1 thread, 1e9 cells (``benchmarks/bench_cluster.py``, 2
alternating runs each): ``lucr.run`` took 18.8 and 19.3 s with the profiler off, 20.3 and
21.4 s with it on, and each worker spent 1.5 s more CPU with it on. While it is paused,
the run's tasks are missing from ``client.profile()`` and dask's performance reports.

:func:`profiler_paused` stops the two periodic callbacks behind it (``profile``,
``profile-cycle``) on every worker where they run, and starts again those it stopped
when the run ends (also after an error). Workers started with the profiler off are left
alone. ``cluster.pause_worker_profiler: false`` keeps the profiler running.
"""

from __future__ import annotations

from typing import Any, ContextManager

from lucr.on_workers import changed_on_workers

CALLBACKS = ("profile", "profile-cycle")  # distributed.Worker.periodic_callbacks


def pause_profiler(dask_worker) -> bool:
    """Stop the worker's running profiler callbacks; whether any ran (run on the worker's event loop)."""
    running = [pc for pc in (dask_worker.periodic_callbacks.get(k) for k in CALLBACKS) if pc is not None and pc.is_running()]
    for pc in running:
        pc.stop()
    return bool(running)


def resume_profiler(dask_worker) -> bool:
    """Start the worker's profiler callbacks again; whether any was started."""
    stopped = [pc for pc in (dask_worker.periodic_callbacks.get(k) for k in CALLBACKS) if pc is not None and not pc.is_running()]
    for pc in stopped:
        pc.start()
    return bool(stopped)


def profiler_paused(client: Any, enabled: bool = True) -> ContextManager[int]:
    """Pause the profiler of the workers of ``client`` for the run; yields how many were paused."""
    return changed_on_workers(client, pause_profiler, resume_profiler, "workers' profiler paused", enabled)

"""The workers' statistical profiler is paused during a run on a cluster, and restarted after."""

import dask
import pytest

from lucr.worker_profiler import CALLBACKS, profiler_paused


def _running(client):
    """Worker address -> names of its running profiler callbacks."""
    def probe(dask_worker):
        return sorted(k for k in CALLBACKS if k in dask_worker.periodic_callbacks and dask_worker.periodic_callbacks[k].is_running())

    return client.run(probe)


@pytest.mark.parametrize("profile", [True, False])
def test_profiler_paused_during_the_run_only(profile):
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": profile}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster) as client:
            before = _running(client)
            assert len(before) == 2
            assert all(v == (sorted(CALLBACKS) if profile else []) for v in before.values()), before
            with profiler_paused(client) as paused:
                assert paused == (2 if profile else 0)
                assert all(v == [] for v in _running(client).values())
            assert _running(client) == before  # restarted where it ran, left off where it was off
            with pytest.raises(RuntimeError), profiler_paused(client):
                raise RuntimeError("a failed run")
            assert _running(client) == before  # restarted after an error too
            with profiler_paused(client, enabled=False) as paused:
                assert paused == 0 and _running(client) == before  # cluster.pause_worker_profiler: false

"""A setting of a cluster's workers changed for one run and put back after it."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


@contextmanager
def changed_on_workers(client: Any, change: Callable[..., bool], undo: Callable[..., bool], what: str, enabled: bool = True) -> Iterator[int]:
    """Run ``change`` on every worker of ``client`` for the run, and ``undo`` after it (also after an
    error) on the workers where ``change`` returned True; yields how many those are.

    Both run on the workers through ``client.run`` (a ``dask_worker`` parameter gets the worker).
    A worker gone by the end has nothing left to undo. Nothing happens without a client
    (local threads) or when ``enabled`` is False.
    """
    if client is None or not enabled:
        yield 0
        return
    changed = [w for w, ok in client.run(change, on_error="return").items() if ok is True]  # a worker that failed is left as it is
    if changed:
        log.debug("%s during the run: %d worker(s)", what, len(changed))
    try:
        yield len(changed)
    finally:
        if changed:
            try:
                client.run(undo, workers=changed, on_error="return")
            except Exception as exc:  # a worker gone: its settings went with it
                log.debug("%s: undoing it on the workers failed: %s", what, exc)

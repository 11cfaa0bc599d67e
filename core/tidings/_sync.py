"""Synchronous twins: work in a script, a Jupyter cell, or inside any running event loop.

The async work runs on an anyio blocking portal in a thread of its own, so a
loop already running in the calling thread (Jupyter's) is never re-entered and
nest_asyncio is not needed.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio.from_thread

from tidings._models import EventList
from tidings._watch import Handler, Watch, WatchStats

__all__ = ["collect", "run_sync"]

Backend = Literal["asyncio", "trio"]


def collect(watch: Watch, limit: int | None = None, *, backend: Backend = "asyncio") -> EventList:
    """Collect a watch's events (a tracker to its end; a feed until idle, or ``limit`` events)."""
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        return EventList(portal.call(watch.collect, limit))


def run_sync(watch: Watch, handler: Handler, *, backend: Backend = "asyncio") -> WatchStats:
    """Run a watch with a handler, blocking until it ends. Ctrl-C stops it after the current delivery."""
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        future = portal.start_task_soon(watch.run, handler)
        try:
            return future.result()
        except KeyboardInterrupt:
            portal.call(_stop, watch)
            return future.result()


async def _stop(watch: Watch) -> Any:
    watch.stop()

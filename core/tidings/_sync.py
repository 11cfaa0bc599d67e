"""Synchronous twins: work in a script, a Jupyter cell, or inside any running event loop.

The async work runs on an anyio blocking portal in a thread of its own, so a
loop already running in the calling thread (Jupyter's) is never re-entered and
nest_asyncio is not needed.

An interrupt (Ctrl-C, the kernel's interrupt button) stops the run after the
delivery in progress and saves the position of what was handed over; a second
interrupt cancels at once, which saves the same position.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import inspect
from typing import Any, Literal

import anyio.from_thread

from tidings._collect import collect_into
from tidings._models import Event, EventList
from tidings._progress import ProgressBar
from tidings._watch import Handler, Watch, WatchStats

__all__ = ["collect", "run_sync"]

Backend = Literal["asyncio", "trio"]


def collect(
    watch: Watch, limit: int | None = None, *, backend: Backend = "asyncio", progress: bool = True
) -> EventList:
    """Collect a watch's events (a tracker to its end; a feed until idle, or ``limit`` events).

    ``progress=False`` turns off the progress bar (``tqdm.auto`` on stderr, if installed).

    Interrupted, it returns the events collected so far with ``interrupted=True``;
    the saved position is not past the last of them.
    """
    out = EventList()
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        future = portal.start_task_soon(functools.partial(collect_into, watch, limit, out, progress=progress))
        out.interrupted = _wait(portal, watch, future)
    return out


def run_sync(
    watch: Watch, handler: Handler, *, backend: Backend = "asyncio", progress: bool = True
) -> WatchStats:
    """Run a watch with a handler, blocking until it ends. Ctrl-C stops it after the current delivery.

    ``progress=False`` turns off the progress bar (``tqdm.auto`` on stderr, if installed).
    """
    bar = ProgressBar(watch) if progress else None

    async def counted(event: Event) -> None:
        result = handler(event)
        if inspect.isawaitable(result):
            await result
        if bar is not None:
            bar.update(event)

    interrupted = False
    try:
        with anyio.from_thread.start_blocking_portal(backend) as portal:
            future = portal.start_task_soon(watch.run, counted if bar is not None else handler)
            interrupted = _wait(portal, watch, future)
    finally:
        if bar is not None:
            bar.close(interrupted)
    return watch.stats


def _wait(portal: anyio.from_thread.BlockingPortal, watch: Watch, future: concurrent.futures.Future[Any]) -> bool:
    """Wait for the run; True if an interrupt stopped it (errors of the run are raised)."""
    try:
        future.result()
        return False
    except KeyboardInterrupt:
        pass
    try:
        portal.call(_stop, watch)
        future.result()
    except KeyboardInterrupt:  # a second interrupt: cancel now (the streams save what was handed over)
        future.cancel()
        with contextlib.suppress(concurrent.futures.CancelledError):
            future.result()
    return True


async def _stop(watch: Watch) -> None:
    watch.stop()

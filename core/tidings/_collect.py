"""Collecting a watch's events into an :class:`EventList` (``Watch.collect`` and ``tidings.collect``).

An event counts as delivered once it is in the list: the position saved when a
run stops (idle, ``limit``, an interrupt) is never past the events handed back.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tidings._models import EventList
from tidings._progress import ProgressBar

if TYPE_CHECKING:
    from tidings._watch import Watch

__all__ = ["collect_into"]


async def collect_into(
    watch: Watch, limit: int | None = None, out: EventList | None = None, *, progress: bool = False
) -> EventList:
    """Append a run's events to ``out`` (a new list if None) and return it.

    A tracker runs to its end; a feed until a poll finds nothing new, or until
    ``limit`` events, whichever comes first. The caller may keep ``out`` to read
    what was collected when the run is interrupted. ``progress`` shows a
    ``tqdm.auto`` bar on stderr.
    """
    if out is None:
        out = EventList()
    if limit is not None and limit <= 0:
        return out
    bar = ProgressBar(watch) if progress else None
    until_idle = watch.until_idle
    if watch.info.kind == "feed":
        watch.until_idle = True  # a limit is an upper bound, not a promise that many events exist
    try:
        async with contextlib.aclosing(watch.events()) as events:
            async for event in events:
                out.append(event)
                if bar is not None:
                    bar.update(event)
                if limit is not None and len(out) >= limit:
                    watch.stop()
    except KeyboardInterrupt:
        # Ctrl-C or the kernel's interrupt met inside this run (a top-level ``await watch.collect()``):
        # the streams saved the position of what got here, so hand it back rather than drop it.
        out.interrupted = True
    finally:
        watch.until_idle = until_idle
        if bar is not None:
            bar.close(out.interrupted)
    return out

"""Calls from other threads onto a running watch's event loop (a webhook server in a thread of its own)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["LoopHandoff"]


class LoopHandoff:
    """Runs a synchronous call on the loop of a running watch, from whatever thread it comes.

    From the loop's own thread the call runs at once; from another it runs on the loop
    (``anyio.from_thread.run_sync``). :meth:`close` refuses new hand-overs and lets those on
    their way land, so none waits on a loop that has gone.
    """

    def __init__(self) -> None:
        self._token: Any = None
        self._thread = 0
        self._lock = threading.Lock()
        self._on_the_way = 0

    @property
    def open(self) -> bool:
        return self._token is not None

    def begin(self) -> None:
        """Accept hand-overs from now on (call it on the loop's thread)."""
        self._thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()

    def call(self, func: Callable[..., Any], *args: Any, closed: Any = None) -> Any:
        """``func(*args)`` on the loop; ``closed`` if the loop does not take hand-overs (any more)."""
        if threading.get_ident() == self._thread:
            return func(*args)
        with self._lock:
            token = self._token
            if token is None:
                return closed
            self._on_the_way += 1
        try:
            return anyio.from_thread.run_sync(func, *args, token=token)
        except RuntimeError:  # the loop has ended
            return closed
        finally:
            with self._lock:
                self._on_the_way -= 1

    async def close(self, patience: float = 10.0) -> None:
        """Refuse new hand-overs; wait (up to ``patience`` seconds, shielded) for those on their way."""
        with self._lock:
            self._token = None
        self._thread = 0
        with anyio.CancelScope(shield=True), anyio.move_on_after(patience):
            # those on their way need this loop to run: let them land (the count changes in other
            # threads, which cannot set an anyio.Event of this loop)
            while self._on_the_way:  # noqa: ASYNC110
                await anyio.sleep(0.005)

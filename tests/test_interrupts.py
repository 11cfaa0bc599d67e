"""An interrupt (SIGINT, as Jupyter's interrupt button sends) loses nothing, on both backends.

The provider's server sends the real signal to the main thread while a page is
being fetched, and holds the answer back long enough for the main thread to see it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tidings

from tiny import TinyServer, make_watch

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(autouse=True)
def sigint_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def each_kind_and_backend(test: Any) -> Any:
    """A feed and a tracker, on asyncio and trio."""
    test = pytest.mark.parametrize("backend", BACKENDS)(test)
    test = pytest.mark.parametrize("provider", ["tiny-feed", "tiny-tracker"])(test)
    return pytest.mark.usefixtures("tiny_feed", "tiny_tracker")(test)


class Interrupting(TinyServer):
    """A tiny server that interrupts the main thread on its ``at``-th request (once)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at
        self.fired = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if len(self.requests) + 1 == self.at and not self.fired:
            self.fired = True
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            time.sleep(0.2)  # the main thread meets the interrupt while this page is in flight
        return super().handler(request)


def feed_server() -> Interrupting:
    srv = Interrupting(at=3)
    for i in range(12):
        srv.add(f"e{i:02d}", i // 4)
    return srv


def tracker_server() -> Interrupting:
    srv = Interrupting(at=3)
    for s in "abc":
        for n in range(4):
            srv.add(f"{s}{n}", n, s, kind="done" if n == 3 else "note")
    return srv


def interrupted_collect(watch: tidings.Watch, backend: str) -> tidings.EventList:
    try:
        return tidings.collect(watch, backend=backend)  # type: ignore[arg-type]
    except KeyboardInterrupt:  # before the fix: the events were thrown away (and their position saved)
        return tidings.EventList()


def watch_on(srv: TinyServer, provider: str, path: Path) -> tidings.Watch:
    params = {"subject": ["a", "b", "c"]} if provider == "tiny-tracker" else {}
    return make_watch(srv, provider=provider, params=params, store=tidings.SQLiteStore(path), name="w")


@each_kind_and_backend
def test_interrupted_collect_hands_back_what_it_collected(provider: str, backend: str, tmp_path: Path) -> None:
    srv = feed_server() if provider == "tiny-feed" else tracker_server()
    everything = {e["id"] for e in srv.events}
    first = interrupted_collect(watch_on(srv, provider, tmp_path / "cp.sqlite3"), backend)
    assert srv.fired
    assert first.interrupted and 0 < len(first) < len(everything)
    assert "interrupted" in str(first)
    rest = tidings.collect(watch_on(srv, provider, tmp_path / "cp.sqlite3"), backend=backend)  # type: ignore[arg-type]
    assert not rest.interrupted
    assert {e.id for e in first} | {e.id for e in rest} == everything  # nothing lost
    assert not {e.id for e in first} & {e.id for e in rest}  # and, here, nothing repeated


@each_kind_and_backend
def test_interrupted_run_sync_saves_only_what_the_handler_got(provider: str, backend: str, tmp_path: Path) -> None:
    srv = feed_server() if provider == "tiny-feed" else tracker_server()
    everything = {e["id"] for e in srv.events}
    got: list[str] = []
    try:
        tidings.run_sync(watch_on(srv, provider, tmp_path / "cp.sqlite3"), lambda e: got.append(e.id), backend=backend)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass
    assert srv.fired and 0 < len(got) < len(everything)
    tidings.run_sync(watch_on(srv, provider, tmp_path / "cp.sqlite3"), lambda e: got.append(e.id), backend=backend)  # type: ignore[arg-type]
    assert set(got) == everything and len(got) == len(everything)


@pytest.mark.usefixtures("tiny_feed")
@pytest.mark.parametrize("backend", BACKENDS)
def test_collect_with_a_limit_ends_at_idle_when_the_feed_has_fewer(server: TinyServer, backend: str) -> None:
    watch = make_watch(server, until_idle=False)  # as a user makes it: a feed follows for ever
    done = threading.Event()
    result: list[tidings.EventList] = []

    def call() -> None:
        result.append(tidings.collect(watch, limit=100, backend=backend))  # type: ignore[arg-type]
        done.set()

    threading.Thread(target=call, daemon=True).start()
    ended = done.wait(10)  # (a daemon thread: a stuck run does not keep the test process alive)
    assert ended, "collect(limit=100) on a feed of 12 events did not end at idle"
    assert len(result[0]) == 12 and not result[0].interrupted


def run_in_a_kernel_like_loop(backend: str, make: Any) -> Any:
    """Run ``make()`` (a coroutine) as a top-level ``await`` does: asyncio without ``asyncio.run``'s
    own SIGINT handling (Jupyter's kernel loop), or ``trio.run``."""
    if backend == "trio":
        import trio

        return trio.run(make)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()


@each_kind_and_backend
def test_interrupted_top_level_await_collect_hands_back_what_it_collected(
    provider: str, backend: str, tmp_path: Path
) -> None:
    srv = feed_server() if provider == "tiny-feed" else tracker_server()
    everything = {e["id"] for e in srv.events}
    path = tmp_path / "cp.sqlite3"

    async def cell() -> tidings.EventList:
        return await watch_on(srv, provider, path).collect()

    try:
        first = run_in_a_kernel_like_loop(backend, cell)
    except KeyboardInterrupt:  # before the fix: the events collected were dropped, their position saved
        first = tidings.EventList()
    assert srv.fired
    assert first.interrupted and 0 < len(first) < len(everything)
    rest = run_in_a_kernel_like_loop(backend, cell)
    assert not rest.interrupted
    assert {e.id for e in first} | {e.id for e in rest} == everything

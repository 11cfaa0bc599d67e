"""Plugin discovery and per-watch dispatch: a watch's calls reach its provider and cross-cutting plugins only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import tidings
from tidings import hookimpl

from tiny import TinyFeed, TinyServer, TinyTracker, at, make_watch

pytestmark = pytest.mark.anyio


class Spy:
    """A cross-cutting plugin: wraps fetch_page and observes pages."""

    def __init__(self) -> None:
        self.fetches: list[str] = []
        self.pages: list[int] = []
        self.finished: list[BaseException | None] = []

    @hookimpl(wrapper=True)
    def fetch_page(self, ctx: tidings.WatchContext) -> Any:
        self.fetches.append(ctx.provider)
        return (yield)

    @hookimpl
    def page_committed(self, events: list[tidings.Event]) -> None:
        self.pages.append(len(events))

    @hookimpl
    def watch_finished(self, error: BaseException | None) -> None:
        self.finished.append(error)


class CountingTracker(TinyTracker):
    calls = 0

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> tidings.Event:
        CountingTracker.calls += 1
        return super().parse_event(record)


@pytest.fixture
def both() -> Iterator[tuple[Any, Any]]:
    feed = tidings.register(TinyFeed())
    tracker = tidings.register(CountingTracker())
    yield feed, tracker
    tidings.unregister(feed)
    tidings.unregister(tracker)


async def test_a_watch_reaches_its_provider_only(both: tuple[Any, Any], server: TinyServer) -> None:
    CountingTracker.calls = 0
    events = await make_watch(server).collect()
    assert len(events) == 12 and all(e.provider == "tiny-feed" for e in events)
    assert CountingTracker.calls == 0


async def test_cross_cutting_plugins_wrap_and_observe_every_watch(both: tuple[Any, Any], server: TinyServer) -> None:
    spy = tidings.register(Spy())
    try:
        await make_watch(server).collect()
        srv = TinyServer()
        srv.add("d", 0, "a", kind="done")
        await make_watch(srv, provider="tiny-tracker", params={"subject": "a"}).collect()
    finally:
        tidings.unregister(spy)
    assert "tiny-feed" in spy.fetches and "tiny-tracker" in spy.fetches
    assert sum(spy.pages) == 13
    assert spy.finished == [None, None]


class AsyncFeed(TinyFeed):
    name = "async-feed"

    @hookimpl
    async def parse_event(self, record: dict[str, Any]) -> tidings.Event:
        return TinyFeed.parse_event(self, record)

    @hookimpl
    async def checkpoint(self, cursor: Any, event: tidings.Event) -> Any:
        return TinyFeed.checkpoint(self, cursor, event)


async def test_hooks_may_return_awaitables(server: TinyServer, tidings_plugin: Any) -> None:
    tidings_plugin(AsyncFeed)
    events = await make_watch(server, provider="async-feed", until_idle=True).collect()
    assert [e.id for e in events] == [f"e{i:02d}" for i in range(12)]


def test_a_misspelt_hook_fails_loudly() -> None:
    class Misspelt:
        @hookimpl
        def fetch_pages(self, ctx: Any, cursor: Any) -> None: ...

    with pytest.raises(tidings.PluginError, match="fetch_pages"):
        tidings.register(Misspelt())
    assert all(not isinstance(p, Misspelt) for p in tidings._plugins.get_plugin_manager().get_plugins())


def test_an_unknown_provider_names_the_installed_ones(tiny_feed: Any) -> None:
    with pytest.raises(tidings.ConfigurationError, match=r"no provider called 'nope'.*tiny-feed"):
        tidings.Watch("nope")


def test_a_provider_without_fetch_page_is_refused(tidings_plugin: Any) -> None:
    class Half:
        @hookimpl
        def provider_info(self) -> tidings.ProviderInfo:
            return tidings.ProviderInfo(name="half", kind="feed", description="", cursor_type=dict,
                                        default_base_url="http://half.test")

    tidings_plugin(Half)
    watch = tidings.Watch("half")
    with pytest.raises(tidings.PluginError, match="does not implement the required hook 'fetch_page'"):
        watch._hooks.caller("fetch_page")


def test_installed_plugins_come_from_entry_points() -> None:
    found = tidings.providers()
    for name in ("financing-activity", "opentransact", "aml-session", "request-status", "bank-sync"):
        assert found[name].distribution == f"tidings-{name}"
        assert found[name].version


def test_exported_members_are_complete() -> None:
    import types

    public = {
        name
        for name, value in vars(tidings).items()
        if not name.startswith(("_", "@")) and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public - set(tidings.__all__) == set()
    for name in tidings.__all__:
        assert hasattr(tidings, name), name
    assert len(set(tidings.__all__)) == len(tidings.__all__)


class Reads:
    """Observes what each page held and each retry."""

    def __init__(self) -> None:
        self.pages: list[tuple[int, int, int, int]] = []
        self.seconds: list[float] = []
        self.retries: list[tuple[str, int, float]] = []

    @hookimpl
    def page_read(self, records: int, new: int, duplicates: int, dead_letters: int, seconds: float) -> None:
        self.pages.append((records, new, duplicates, dead_letters))
        self.seconds.append(seconds)

    @hookimpl
    def fetch_retried(self, ctx: tidings.WatchContext, error: BaseException, attempt: int, wait: float) -> None:
        self.retries.append((type(error).__name__, attempt, wait))


async def test_observers_hear_each_page_read_and_each_retry(
    server: TinyServer, tiny_feed: Any, tidings_plugin: Any
) -> None:
    reads = tidings_plugin(Reads())
    server.faults.extend([httpx.Response(503, headers={"Retry-After": "0.05"}), httpx.ConnectError("refused")])
    server.add("e11", 3)  # a repeat of e11
    server.events.append({"id": "bad", "time": at(3), "subject": "s1"})  # cannot be parsed: no kind
    watch = make_watch(server)
    events = await watch.collect()
    assert len(events) == 12 and len(reads.pages) == watch.stats.pages
    assert sum(p[1] for p in reads.pages) == 12
    assert sum(p[2] for p in reads.pages) == watch.stats.duplicates >= 1  # the repeat (and overlap re-reads)
    assert sum(p[3] for p in reads.pages) == 1  # set aside once, however often it is re-read
    assert sum(p[0] for p in reads.pages) >= 14
    assert reads.seconds[0] >= 0.05  # the first fetch waited out a Retry-After
    assert [(name, attempt) for name, attempt, _ in reads.retries] == [("TransientError", 1), ("TransientError", 2)]
    assert reads.retries[0][2] >= 0.05

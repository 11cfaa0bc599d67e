"""Positions are bound to where they came from: provider, base URL and the work they follow."""

from __future__ import annotations

from typing import Any

import pytest
import tidings
from tidings import Param, ProviderInfo, hookimpl
from tidings._origin import OriginMismatch

from tiny import TinyCursor, TinyServer, TinyTracker, make_watch

pytestmark = pytest.mark.anyio


async def ids_of(watch: tidings.Watch) -> list[str]:
    return [e.id for e in await watch.collect()]


@pytest.mark.usefixtures("tiny_feed")
async def test_a_position_saved_against_one_server_is_not_resumed_against_another(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    first = await ids_of(make_watch(server, base_url="https://one.test/api", store=store))
    assert len(first) == 12
    other = TinyServer()
    for i in range(23):
        other.add(f"o{i:02d}", i)
    with pytest.raises(OriginMismatch) as caught:
        await ids_of(make_watch(other, base_url="https://two.test/api", store=store))
    message = str(caught.value)
    assert "https://one.test/api" in message and "https://two.test/api" in message and "--rebase" in message
    assert "\n" not in message
    assert isinstance(caught.value, tidings.ConfigurationError)


@pytest.mark.usefixtures("tiny_feed")
async def test_rebase_carries_the_position_over_and_records_the_new_url(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    await ids_of(make_watch(server, base_url="https://one.test/api", store=store))
    server.add("late", 100)
    moved = await ids_of(make_watch(server, base_url="https://mirror.test/api", store=store, rebase=True))
    assert moved == ["late"]
    again = await ids_of(make_watch(server, base_url="https://mirror.test/api/", store=store))
    assert again == []  # the new URL is the recorded one now (a trailing slash is the same URL)
    with pytest.raises(OriginMismatch):
        await ids_of(make_watch(server, base_url="https://one.test/api", store=store))


@pytest.mark.usefixtures("tiny_feed")
async def test_a_new_name_starts_afresh_against_the_other_server(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    await ids_of(make_watch(server, base_url="https://one.test/api", store=store))
    fresh = await ids_of(make_watch(server, base_url="https://two.test/api", store=store, name="two"))
    assert len(fresh) == 12


@pytest.mark.usefixtures("tiny_feed")
async def test_a_watch_saved_before_origins_were_kept_adopts_this_runs(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    await ids_of(make_watch(server, base_url="https://one.test/api", store=store))
    saved = await store.load_streams("tiny-feed")
    assert saved is not None
    assert saved["origin"]["provider"] == "tiny-feed" and saved["origin"]["base_url"] == "https://one.test/api"
    del saved["origin"]
    await store.save_streams("tiny-feed", saved)
    assert await ids_of(make_watch(server, base_url="https://two.test/api", store=store)) == []
    with pytest.raises(OriginMismatch):
        await ids_of(make_watch(server, base_url="https://one.test/api", store=store))


class WorkTracker(TinyTracker):
    name = "work-tracker"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name, kind="tracker", description="a tracker whose subjects are its work",
            cursor_type=TinyCursor, default_base_url="https://tiny.test/api",
            params=(Param("subject", "a subject to follow", repeatable=True, work=True),),
        )


async def test_the_same_name_for_other_work_is_refused(server: TinyServer, tidings_plugin: Any) -> None:
    tidings_plugin(WorkTracker())
    server.add("d1", 20, subject="s1", kind="done")
    store = tidings.MemoryStore()
    done = await ids_of(make_watch(server, "work-tracker", name="mine", params={"subject": "s1"}, store=store))
    assert done[-1] == "d1"
    with pytest.raises(OriginMismatch, match="other work"):
        await ids_of(make_watch(server, "work-tracker", name="mine", params={"subject": "s2"}, store=store))
    with pytest.raises(OriginMismatch, match="other work"):  # --rebase is about the server, not the work
        await ids_of(make_watch(server, "work-tracker", name="mine", params={"subject": "s2"}, store=store,
                                rebase=True))


async def test_another_provider_under_the_same_name_is_refused(
    server: TinyServer, tiny_feed: Any, tidings_plugin: Any
) -> None:
    tidings_plugin(WorkTracker())
    store = tidings.MemoryStore()
    await ids_of(make_watch(server, name="shared", store=store))
    with pytest.raises(OriginMismatch, match="provider 'tiny-feed'"):
        await ids_of(make_watch(server, "work-tracker", name="shared", params={"subject": "s1"}, store=store))


def test_the_work_digest_covers_only_the_options_marked_as_work() -> None:
    from tidings._origin import Origin

    info = ProviderInfo(name="p", kind="feed", description="d", cursor_type=TinyCursor,
                        params=(Param("metadata.KEY", "a filter family", work=True), Param("limit", "page size")))

    def work(**params: Any) -> str:
        return Origin.of(info, "https://p.test", {k.replace("_", "."): v for k, v in params.items()}).work

    assert work(metadata_a="1", limit="5") == work(metadata_a="1", limit="50")
    assert work(metadata_a="1") != work(metadata_a="2") != work()

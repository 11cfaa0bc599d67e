"""The wrappers' other paths: a provider whose fetch_page is a plain function, and an async parse_webhook."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import tidings
from opentelemetry.trace import StatusCode
from otel_recorded import Recorded
from tidings import Event, Page, ProviderInfo, Push, hookimpl
from tidings.webhooks import WebhookReceiver

pytestmark = pytest.mark.anyio


class Plain:
    """A feed read from memory: plain-function fetch_page (no HTTP), async parse_webhook."""

    def __init__(self) -> None:
        self.pages: list[Any] = [[{"id": "a"}, {"id": "b"}], [{"id": "c"}]]

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(name="otel-plain", kind="feed", description="in memory", cursor_type=dict,
                            default_base_url="http://plain.test")

    @hookimpl
    def fetch_page(self, cursor: dict[str, Any]) -> Page:
        page = self.pages.pop(0) if self.pages else []
        if isinstance(page, Exception):
            raise page
        return Page(records=page)

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> Event:
        return Event.make(provider="otel-plain", id=record["id"], subject=None, type="note", status=None,
                          occurred_at=datetime(2024, 1, 1, tzinfo=UTC), raw=record)

    @hookimpl
    def checkpoint(self, cursor: dict[str, Any], event: Event) -> dict[str, Any]:
        return {"last": event.id}

    @hookimpl
    async def parse_webhook(self, body: bytes) -> list[Push]:
        await anyio.lowlevel.checkpoint()
        return [Push("", record=json.loads(body))]


def watch(name: str) -> tidings.Watch:
    return tidings.Watch("otel-plain", name=name, until_idle=True, interval=0.0)


async def test_a_plain_fetch_page_gets_its_span(otel: Recorded, tidings_plugin: Any) -> None:
    tidings_plugin(Plain())
    name = otel.name()
    events = await watch(name).collect()
    assert [e.id for e in events] == ["a", "b", "c"]
    fetches = sorted(otel.spans("tidings.fetch", name), key=lambda s: s.start_time or 0)
    assert [s.attributes["tidings.page.new"] for s in fetches] == [2, 1, 0]  # type: ignore[index]
    assert otel.total("tidings.events.delivered", name) == 3


async def test_a_plain_fetch_page_that_fails_ends_its_span_as_failed(otel: Recorded, tidings_plugin: Any) -> None:
    plain = tidings_plugin(Plain())
    plain.pages = [tidings.ProviderHTTPError("HTTP 400 from the provider", provider="otel-plain")]
    name = otel.name()
    with pytest.raises(tidings.ProviderHTTPError):
        await watch(name).collect()
    (fetch,) = otel.spans("tidings.fetch", name)
    assert fetch.status.status_code == StatusCode.ERROR
    assert [e.name for e in fetch.events] == ["exception"]


async def test_an_async_parse_webhook_gets_its_span_and_links_the_pushed_page(
    otel: Recorded, tidings_plugin: Any
) -> None:
    plain = tidings_plugin(Plain())
    plain.pages = []
    name = otel.name()
    feed = tidings.Watch("otel-plain", name=name, interval=30, max_interval=30)
    got: list[tidings.Event] = []

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed.run, got.append)
        with anyio.fail_after(10):
            while not otel.spans("tidings.fetch", name):
                await anyio.sleep(0.01)
            answer = await WebhookReceiver(feed).handle({}, json.dumps({"id": "pushed"}).encode())
            assert answer == (200, {"ok": True})
            while not got:
                await anyio.sleep(0.01)
        feed.stop()

    assert [e.id for e in got] == ["pushed"]
    (webhook,) = otel.spans("tidings.webhook", name)
    assert webhook.attributes is not None and webhook.attributes["tidings.webhook.pushes"] == 1
    (commit,) = otel.spans("tidings.commit", name)  # the pushed page: no fetch, its commit links the webhook
    assert [link.context.span_id for link in commit.links] == [webhook.context.span_id]
    assert otel.total("tidings.webhooks.received", name) == 1

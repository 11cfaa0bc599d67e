"""The spans of a feed, a tracker and a webhook, followed on the providers' emulators."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import anyio
import httpx
import pytest
import tidings
from opentelemetry.trace import SpanKind, StatusCode
from otel_recorded import Recorded, Told
from tidings.sandbox import Clock
from tidings.webhooks import WebhookReceiver, receive
from tidings_aml_session import AmlSessionEmulator

pytestmark = pytest.mark.anyio


def status_code(span: Any) -> int:
    attributes = span.attributes or {}
    return int(attributes.get("http.response.status_code", attributes.get("http.status_code", 0)))


async def test_a_feeds_fetch_and_commit_spans(
    otel: Recorded, told: Told, tidings_emulator: Any, tidings_watch: Any
) -> None:
    emulator, scenario = tidings_emulator("financing-activity", size=12)
    emulator.faults.retry_after = 0.01
    emulator.faults.fail_next("429")
    name = otel.name()
    watch = tidings_watch(emulator, scenario, name=name)
    with anyio.fail_after(20):
        await watch.run(lambda event: None)

    fetches = sorted(otel.spans("tidings.fetch", name), key=lambda s: s.start_time or 0)
    assert len(fetches) == watch.stats.pages
    first = fetches[0]
    assert first.kind == SpanKind.INTERNAL and first.parent is None
    assert first.attributes is not None
    assert {k: first.attributes[k] for k in ("tidings.provider", "tidings.watch", "tidings.stream")} == {
        "tidings.provider": "financing-activity", "tidings.watch": name, "tidings.stream": "",
    }
    assert first.attributes["tidings.attempts"] == 2  # the 429 and its retry, in one span
    assert [e.name for e in first.events] == ["exception", "retry"]
    assert first.status.status_code == StatusCode.UNSET
    assert sum(s.attributes["tidings.page.new"] for s in fetches) == 12  # type: ignore[index]
    assert sum(s.attributes["tidings.page.records"] for s in fetches) == told.records  # type: ignore[index]
    # the HTTP client spans (opentelemetry-instrumentation-httpx) are the fetches' children
    assert [status_code(s) for s in otel.children(first)] == [429, 200]
    http = [s for s in otel.exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert len(http) == len(emulator.requests) == watch.stats.pages + 1
    assert all(s.parent is not None and s.parent.span_id in {f.context.span_id for f in fetches} for s in http)

    commits = otel.spans("tidings.commit", name)
    assert len(commits) == len(told.commits)
    assert sum(s.attributes["tidings.commit.events"] for s in commits) == 12  # type: ignore[index]
    by_id = {f.context.span_id: f for f in fetches}
    for commit in commits:
        (link,) = commit.links
        fetch = by_id[link.context.span_id]  # each commit is linked to the fetch of its page
        assert fetch.end_time is not None and commit.start_time is not None and fetch.end_time <= commit.start_time


async def test_a_trackers_start_span_holds_its_requests(
    otel: Recorded, tidings_emulator: Any, tidings_watch: Any
) -> None:
    emulator, scenario = tidings_emulator("bank-sync", size=12)
    name = otel.name()
    watch = tidings_watch(emulator, scenario, name=name)
    with anyio.fail_after(30):
        await watch.run(lambda event: None)

    (start,) = otel.spans("tidings.start", name)
    assert start.attributes is not None and start.attributes["tidings.provider"] == "bank-sync"
    sent = [(s.attributes or {}).get("http.method", (s.attributes or {}).get("http.request.method"))
            for s in otel.children(start)]
    assert sent and set(sent) == {"POST"}  # subscribing a queue, triggering the sync
    queue = next(iter(emulator.queues))
    fetches = otel.spans("tidings.fetch", name)
    assert fetches and {s.attributes["tidings.stream"] for s in fetches} == {queue}  # type: ignore[index]
    assert all(otel.children(f) for f in fetches)


async def test_a_failed_fetch_span_says_why(otel: Recorded, tidings_emulator: Any, tidings_watch: Any) -> None:
    emulator, scenario = tidings_emulator("financing-activity", size=4)
    emulator.faults.fail_next("503", 3)
    name = otel.name()
    watch = tidings_watch(emulator, scenario, name=name, max_retries=2, retry_base_wait=0.001, retry_max_wait=0.002)
    with anyio.fail_after(20), pytest.raises(tidings.RetriesExhausted):
        await watch.run(lambda event: None)
    (fetch,) = otel.spans("tidings.fetch", name)
    assert fetch.attributes is not None and fetch.attributes["tidings.attempts"] == 3
    assert fetch.status.status_code == StatusCode.ERROR and "RetriesExhausted" in (fetch.status.description or "")
    assert [status_code(s) for s in otel.children(fetch)] == [503, 503, 503]


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "receiver-thread"])
async def test_a_webhooks_span_is_linked_from_the_poll_it_caused(otel: Recorded, served: bool) -> None:
    emulator = AmlSessionEmulator(seed=3, clock=Clock(speed=10.0), json_delay=1000, report_delay=1000,
                                  webhooks="never")
    name = otel.name()
    watch = tidings.Watch("aml-session", name=name, base_url=emulator.base_url, token=emulator.token,
                          transport=emulator.transport(), params={"country": "no", "identifier": "923609016"},
                          interval=30, max_interval=30)
    receiver = WebhookReceiver(watch)
    with ExitStack() as stack:
        if served:  # the core's receiver on loopback, in a thread of its own (tidings follow --webhook-listen)
            stack.enter_context(receive(watch, "127.0.0.1:0"))

        def polls() -> int:
            return len(otel.spans("tidings.fetch", name))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run, lambda event: None)
            with anyio.fail_after(10):
                while polls() < 1:  # the first poll; the next is 30 s away
                    await anyio.sleep(0.01)
                (stream,) = {s.attributes["tidings.stream"] for s in otel.spans("tidings.fetch", name)}  # type: ignore[index]
                body = json.dumps({"sessionId": stream, "status": "ReportReady"}).encode()
                if served:
                    async with httpx.AsyncClient() as client:
                        answer = await client.post(str(watch.webhook_url), content=body)
                    assert answer.status_code == 200, answer.text
                else:
                    assert await receiver.handle({"content-type": "application/json"}, body) == (200, {"ok": True})
                while polls() < 2:  # the webhook made the stream poll at once
                    await anyio.sleep(0.01)
            watch.stop()

    (webhook,) = otel.spans("tidings.webhook", name)
    assert webhook.attributes is not None and list(webhook.attributes["tidings.streams"]) == [stream]  # type: ignore[arg-type]
    first, second = sorted(otel.spans("tidings.fetch", name), key=lambda s: s.start_time or 0)
    assert first.links == ()
    assert [link.context.span_id for link in second.links] == [webhook.context.span_id]

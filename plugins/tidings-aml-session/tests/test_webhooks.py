"""Webhooks: forged, badly signed and stale ones get 401 and never reach the watch; re-deliveries get 200."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
import tidings
from aml_session_helpers import OK_ORG, SECRET, make_emulator, make_watch, wait_until
from tidings.webhooks import WebhookReceiver, receive, sign
from tidings_aml_session import plugin

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(
    params: dict[str, Any], listen: bool = False
) -> AsyncIterator[tuple[Any, tidings.Watch, str, Callable[[], int]]]:
    """A watch on a session that stays in progress; yields (emulator, watch, session id, polls so far).

    With ``listen``, the run has the core's receiver (``tidings follow --webhook-listen``).
    """
    emulator = make_emulator(json_delay=1000, report_delay=1000, webhook_secret=SECRET, webhooks="never")
    watch = make_watch(emulator, {"country": "no", "identifier": OK_ORG, **params}, interval=30, max_interval=30)
    with ExitStack() as stack:
        if listen:
            stack.enter_context(receive(watch, "127.0.0.1:0", secret=SECRET))
        async with _run(emulator, watch) as out:
            yield out


@asynccontextmanager
async def _run(emulator: Any, watch: tidings.Watch) -> AsyncIterator[tuple[Any, tidings.Watch, str, Callable[[], int]]]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.run, lambda event: None)
        await wait_until(lambda: emulator.latest and any(m == "GET" for m, _ in emulator.requests))
        sid = emulator.latest[OK_ORG]

        def polls() -> int:
            return sum(1 for m, p in emulator.requests if m == "GET" and p == f"/organization/session/{sid}")

        try:
            yield emulator, watch, sid, polls
        finally:
            watch.stop()


def notice(sid: str) -> bytes:
    return json.dumps({"sessionId": sid, "status": "ReportReady", "timestamp": "2024-05-02T10:15:30Z"}).encode()


async def test_the_runs_receiver_refuses_forged_and_stale_webhooks_and_acknowledges_redeliveries() -> None:
    async with running({}, listen=True) as (emulator, _watch, sid, polls), httpx.AsyncClient() as client:
        url = emulator.session_requests[0]["webhooks"]["url"]
        body = notice(sid)

        async def post(headers: dict[str, str], content: bytes = body) -> tuple[int, int]:
            before = polls()
            answer = await client.post(url, content=content, headers=headers)
            await anyio.sleep(0.2)
            return answer.status_code, polls() - before

        good = emulator.signed("msg_good", body)
        forged = base64.b64encode(b"\0" * 32).decode()
        other = sign("whsec_" + base64.b64encode(b"another secret").decode(), "msg_x", int(time.time()), body)
        assert await post({"content-type": "application/json"}) == (401, 0), "unsigned"
        assert await post({**good, "webhook-signature": "v1," + forged}) == (401, 0), "forged signature"
        assert await post({**emulator.signed("msg_x", body), "webhook-signature": other}) == (401, 0), "wrong secret"
        assert await post(good, body.replace(b"ReportReady", b"AllDone")) == (401, 0), "tampered body"
        stale = emulator.signed("msg_old", body, timestamp=int(time.time()) - 3600)
        assert await post(stale) == (401, 0), "too old"
        assert await post(good) == (200, 1), "a good webhook makes the stream poll at once"
        assert await post(good) == (200, 0), "a re-delivery (same webhook-id) is acknowledged, not handed over again"
        assert await post({**emulator.signed("msg_bad", b"[]")}, b"[]") == (400, 0), "not a session notice"


async def test_the_core_receiver_works_with_the_plugins_parse_webhook() -> None:
    async with running({}) as (emulator, watch, sid, polls):
        receiver = WebhookReceiver(watch, secret=SECRET)
        body = notice(sid)
        status, _ = await receiver.handle({"content-type": "application/json"}, body)
        assert status == 401
        before = polls()
        status, _ = await receiver.handle(emulator.signed("msg_1", body), body)
        assert status == 200
        await wait_until(lambda: polls() > before)
        polled = polls()
        status, answer = await receiver.handle(emulator.signed("msg_1", body), body)
        assert status == 200 and answer["duplicate"]  # a re-delivery: acknowledged, not handed over again
        assert receiver.duplicates == 1 and receiver.accepted == 1 and polls() == polled


async def test_webhook_request_field_and_derived_url() -> None:
    async with running({"webhook_events": "AllDone,Failed"}, listen=True) as (emulator, _watch, _sid, _polls):
        sent = emulator.session_requests[0]["webhooks"]
        assert sent["url"].startswith("http://127.0.0.1:") and sent["events"] == ["AllDone", "Failed"]
    async with running({"webhook_url": "https://hooks.example.org/aml"}) as (emulator, _watch, _sid, _polls):
        assert emulator.session_requests[0]["webhooks"]["url"] == "https://hooks.example.org/aml"


async def test_the_removed_receiver_params_say_what_replaced_them() -> None:
    emulator = make_emulator()
    for gone, option in (("webhook_listen", "--webhook-listen"), ("webhook_secret", "--webhook-secret")):
        with pytest.raises(tidings.ConfigurationError, match=option) as caught:  # when the watch is built
            make_watch(emulator, {"country": "no", "identifier": OK_ORG, gone: "hush-123"})
        assert "hush-123" not in str(caught.value)
    assert not emulator.sessions


def test_parse_webhook_needs_a_session_notice() -> None:
    assert plugin.parse_webhook({}, notice("s-1")) == [tidings.Push(stream="s-1")]
    with pytest.raises(tidings.ParseError, match="sessionId"):
        plugin.parse_webhook({}, b'{"status": "AllDone"}')
    with pytest.raises(tidings.ParseError, match="not JSON"):
        plugin.parse_webhook({}, b"<html>")


async def test_a_resumed_watch_serves_its_receiver_again() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = make_emulator(webhook_secret=SECRET, webhooks="on_time")
    params = {"country": "no", "identifier": OK_ORG, "reports": "aml-report"}
    store = tidings.MemoryStore()
    first: list[tidings.Event] = []
    watch = make_watch(emulator, params, store=store, interval=5, max_interval=5)

    def stop_at_once(event: tidings.Event) -> None:
        first.append(event)
        watch.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(emulator.run_webhooks)
        with anyio.fail_after(10), receive(watch, f"127.0.0.1:{port}", secret=SECRET):
            await watch.run(stop_at_once)
        started = time.monotonic()
        second: list[tidings.Event] = []
        again = make_watch(emulator, params, store=store, interval=5, max_interval=5)
        with anyio.fail_after(10), receive(again, f"127.0.0.1:{port}", secret=SECRET):
            await again.run(second.append)
        tg.cancel_scope.cancel()
    assert len(emulator.sessions) == 1  # resumed: no new session
    assert [e.type for e in first + second] == ["JsonDataReady", "ReportReady", "AllDone"]
    assert time.monotonic() - started < 3  # the webhooks reached the resumed watch's receiver

"""Webhooks: Standard Webhooks signatures, replay refusal, body cap, hand-over to a running watch."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
import tidings
from tidings import hookimpl
from tidings.webhooks import WebhookReceiver, WebhookRejected, receive, serve, sign, verify

from tiny import TinyServer, make_watch

pytestmark = pytest.mark.anyio
SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="


def signed(body: bytes, msg_id: str = "msg_1", timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = sign(secret, msg_id, stamp, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_verify_accepts_a_good_signature_and_refuses_the_rest() -> None:
    body = b'{"sessionId": "s1", "status": "AllDone"}'
    assert verify(SECRET, signed(body), body) == "msg_1"
    with pytest.raises(WebhookRejected, match="unsigned"):
        verify(SECRET, {}, body)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, signed(body), body + b" ")
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(SECRET, signed(body, secret="whsec_b3RoZXI="), body)
    with pytest.raises(WebhookRejected, match="away from now"):
        verify(SECRET, signed(body, timestamp=int(time.time()) - 3600), body)


class Hooked:
    """A tracker provider whose webhooks name a subject: the record is delivered through parse_event."""

    name = "hooked"

    @hookimpl
    def provider_info(self) -> tidings.ProviderInfo:
        from tiny import TinyCursor

        return tidings.ProviderInfo(name="hooked", kind="tracker", description="webhook test",
                                    cursor_type=TinyCursor, default_base_url="https://tiny.test/api")

    @hookimpl
    def start(self) -> list[tidings.Stream]:
        return [tidings.Stream("s", subjects=frozenset({"a"}))]

    @hookimpl
    async def fetch_page(self) -> tidings.Page:
        return tidings.Page(records=[])

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> tidings.Event:
        return tidings.Event(provider="hooked", id=record["id"], subject=record["subject"], type=record["kind"],
                             status=None, occurred_at=tidings.parse_time(0), raw=record)

    @hookimpl
    def is_terminal(self, event: tidings.Event) -> bool:
        return event.type == "done"

    @hookimpl
    def checkpoint(self, cursor: Any) -> Any:
        return cursor

    @hookimpl
    def parse_webhook(self, body: bytes) -> list[tidings.Push]:
        return [tidings.Push(stream="s", record=json.loads(body))]


async def _post(client: httpx.AsyncClient, url: str, payload: dict[str, Any], **kw: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = kw.pop("headers", None) or signed(body, **kw)
    return await client.post(url, content=body, headers=headers)


async def test_a_served_receiver_hands_signed_webhooks_to_the_running_watch(tidings_plugin: Any) -> None:
    tidings_plugin(Hooked)
    watch = make_watch(TinyServer(), provider="hooked", interval=5, max_interval=5, until_idle=False)
    receiver = WebhookReceiver(watch, secret=SECRET, max_body_bytes=2000)
    got: list[str] = []
    with serve(receiver) as url:
        async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
            tg.start_soon(watch.run, lambda e: got.append(e.id))
            while not watch.running:
                await anyio.sleep(0.01)
            event = {"id": "n1", "subject": "a", "kind": "note"}
            assert (await _post(client, url, event, msg_id="m1")).status_code == 200
            # re-delivered (same id): acknowledged, never delivered twice; forged, unsigned, too large: refused
            again = await _post(client, url, event, msg_id="m1")
            assert again.status_code == 200 and again.json()["duplicate"] is True
            forged = {"id": "f1", "subject": "a", "kind": "done"}
            bad = signed(json.dumps(forged).encode(), msg_id="m2", secret="whsec_b3RoZXI=")
            assert (await _post(client, url, forged, headers=bad)).status_code == 401
            assert (await client.post(url, content=b"{}")).status_code == 401
            big = {"id": "b", "subject": "a", "kind": "note", "pad": "x" * 5000}
            assert (await _post(client, url, big, msg_id="m3")).status_code == 413
            done = {"id": "d1", "subject": "a", "kind": "done"}
            assert (await _post(client, url, done, msg_id="m4")).status_code == 200
            with anyio.fail_after(5):
                while watch.http is not None:
                    await anyio.sleep(0.01)
    assert got == ["n1", "d1"]
    assert receiver.accepted == 2 and receiver.rejected == 3 and receiver.duplicates == 1


async def test_leaving_the_receiver_while_a_webhook_waits_for_the_loop_does_not_hang(tidings_plugin: Any) -> None:
    """The receiver is left from the watch's own thread while a hand-over waits for that thread."""
    tidings_plugin(Hooked)
    watch = make_watch(TinyServer(), provider="hooked", interval=5, max_interval=5, until_idle=False)
    body = json.dumps({"id": "n1", "subject": "a", "kind": "note"}).encode()
    answers: list[int] = []
    async with anyio.create_task_group() as tg:
        with receive(watch, secret=SECRET) as receiver:  # serving before the watch runs
            url = watch.webhook_url
            assert url is not None and url.startswith("http://127.0.0.1:") and url.endswith("/")
            async with httpx.AsyncClient() as client:
                early = await client.post(url, content=body, headers=signed(body, msg_id="m0"))
            assert early.status_code == 503  # not running yet: the sender may try again
            tg.start_soon(watch.run, lambda event: None)
            with anyio.fail_after(5):
                while not watch.running:
                    await anyio.sleep(0.01)

            def post() -> None:
                answers.append(httpx.post(url, content=body, headers=signed(body, msg_id="m1"), timeout=10).status_code)

            poster = threading.Thread(target=post)
            poster.start()
            deadline = time.monotonic() + 5
            while receiver._handing_over == 0 and time.monotonic() < deadline:
                time.sleep(0.001)  # noqa: ASYNC251 - blocking this loop on purpose: the hand-over waits for it
            assert receiver._handing_over == 1
            watch.stop()
            left = time.monotonic()
        assert time.monotonic() - left < 2  # no join on a server whose request waits for this very loop
        assert watch.webhook_url is None  # the receiver's URL is the watch's only while it serves
    poster.join(5)
    assert not poster.is_alive() and answers in ([200], [503])
    assert not watch.running

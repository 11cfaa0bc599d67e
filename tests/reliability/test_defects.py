"""Issue 14's defects, one test each: hostile bodies, caps, deadlines, origins, tokens and secrets.

Each test failed on the code before its fix. The wire is the point for the dripping server
(real loopback HTTP); elsewhere an in-process ``httpx.MockTransport`` answers.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx
import pytest
import tidings
from tidings import HTTP
from tidings._serve import serve_asgi
from tidings.testing import context_for
from tidings.webhooks import WebhookReceiver, WebhookRejected, receive, sign, verify

from tiny import TinyServer, make_watch

pytestmark = pytest.mark.anyio

DEEP = b"[" * 5000 + b"]" * 5000  # about 10 KB: past the recursion limit of both JSON decoders
SECRET = "client-s3cret-value"


def _answer(content: bytes, status: int = 200, **headers: str) -> httpx.MockTransport:
    return httpx.MockTransport(lambda r: httpx.Response(status, content=content, headers=headers))


def _ctx(http: HTTP, key: str = "r1", **params: Any) -> tidings.WatchContext:
    return context_for(http.provider, params, http=http, stream=tidings.Stream(key), watch="w")


# -- 1: deep JSON is a typed error everywhere ----------------------------------------------------


async def test_deep_json_from_the_provider_is_a_transient_fault() -> None:
    http = HTTP(provider="p", base_url="https://a.test", transport=_answer(DEEP))
    with pytest.raises(tidings.TransientError, match="not JSON"):
        await http.get_json("x")
    with pytest.raises(ValueError, match="nested too deeply"):
        tidings.loads_json(DEEP)
    await http.aclose()


async def test_deep_json_in_request_status_and_bank_sync_readers() -> None:
    from tidings_bank_sync.queue import parse_queue_body
    from tidings_request_status import plugin as request_status

    http = HTTP(provider="request-status", base_url="https://a.test", transport=_answer(DEEP))
    with pytest.raises(tidings.TransientError):
        await request_status.fetch_page(_ctx(http), request_status.RequestStatusCursor())
    await http.aclose()
    with pytest.raises(tidings.ParseError, match="too deeply"):
        parse_queue_body(DEEP)


class _JsonHooked:
    """A tracker whose parse_webhook decodes with json.loads, as a plugin author would write it."""

    @tidings.hookimpl
    def provider_info(self) -> tidings.ProviderInfo:
        from tiny import TinyCursor

        return tidings.ProviderInfo(name="json-hooked", kind="tracker", description="webhook test",
                                    cursor_type=TinyCursor, default_base_url="https://tiny.test/api")

    @tidings.hookimpl
    def start(self) -> list[tidings.Stream]:
        return [tidings.Stream("s", subjects=frozenset({"a"}))]

    @tidings.hookimpl
    async def fetch_page(self) -> tidings.Page:
        return tidings.Page(records=[])

    @tidings.hookimpl
    def parse_event(self, record: Any) -> tidings.Event:
        raise tidings.ParseError("never called")

    @tidings.hookimpl
    def checkpoint(self, cursor: Any) -> Any:
        return cursor

    @tidings.hookimpl
    def parse_webhook(self, body: bytes) -> list[tidings.Push]:
        return [tidings.Push(stream="s", record=json.loads(body))]


async def test_a_deep_webhook_body_is_answered_400_not_500(tidings_plugin: Any) -> None:
    from tidings_aml_session.plugin import parse_webhook

    with pytest.raises(tidings.ParseError):
        parse_webhook({}, DEEP)
    tidings_plugin(_JsonHooked)
    watch = make_watch(TinyServer(), provider="json-hooked", interval=5, max_interval=5, until_idle=False)
    receiver = WebhookReceiver(watch)  # unsigned: reachable by anyone who can reach the port
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.run, lambda e: None)
        with anyio.fail_after(5):
            while not watch.running:
                await anyio.sleep(0.01)
        status, answer = await receiver.handle({}, DEEP)
        watch.stop()
        tg.cancel_scope.cancel()
    assert status == 400 and "RecursionError" in answer["error"]


# -- 5: every body the core reads is capped, token answers and gzip bombs included -----------------


def _endless() -> httpx.MockTransport:
    async def forever() -> AsyncIterator[bytes]:
        while True:
            yield b" " * 65536
            await anyio.lowlevel.checkpoint()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, content=forever())
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler)


def _bomb(size: int) -> bytes:
    return gzip.compress(b" " * size, compresslevel=9)


async def test_an_endless_token_answer_is_refused_at_the_cap() -> None:
    auth = tidings.OAuth2ClientCredentials("https://auth.a.test/oauth/token", "c", SECRET, max_body_bytes=100_000)
    http = HTTP(provider="p", base_url="https://a.test", auth=auth, transport=_endless())
    with anyio.fail_after(10), pytest.raises(tidings.ResponseTooLarge, match="cap of 100000"):
        await http.get_json("x")
    await http.aclose()


async def test_gzip_bombs_are_refused_by_their_decoded_size() -> None:
    bomb = _bomb(30_000_000)  # 30 MB of spaces in about 30 KB
    assert len(bomb) < 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bomb, headers={"content-encoding": "gzip"})

    auth = tidings.OAuth2ClientCredentials("https://auth.a.test/oauth/token", "c", SECRET)  # default cap: 1 MiB
    http = HTTP(provider="p", base_url="https://a.test", auth=auth, transport=httpx.MockTransport(handler))
    with pytest.raises(tidings.ResponseTooLarge):
        await http.get_json("x")
    plain = HTTP(provider="p", base_url="https://a.test", max_body_bytes=1_000_000,
                 transport=httpx.MockTransport(handler))
    with pytest.raises(tidings.ResponseTooLarge):
        await plain.get_json("x")
    await http.aclose()
    await plain.aclose()


# -- 6: a malformed whsec_ secret is refused at start ---------------------------------------------


async def test_a_malformed_whsec_secret_is_refused_at_start(tidings_plugin: Any) -> None:
    body = b'{"sessionId": "s1", "status": "AllDone"}'
    stamp = int(time.time())
    empty_key_mac = hmac.new(b"", f"m1.{stamp}.".encode() + body, hashlib.sha256).digest()
    forged = {"webhook-id": "m1", "webhook-timestamp": str(stamp),
              "webhook-signature": "v1," + base64.b64encode(empty_key_mac).decode()}
    for bad in ("whsec_!!!!", "whsec_", "whsec_c2VjcmV0=x", ""):
        with pytest.raises((tidings.ConfigurationError, WebhookRejected)):
            verify(bad, forged, body)
        with pytest.raises(tidings.ConfigurationError, match="secret") as info:
            sign(bad, "m1", stamp, body)
        assert bad[6:] == "" or bad[6:] not in str(info.value)
    tidings_plugin(_JsonHooked)
    watch = make_watch(TinyServer(), provider="json-hooked")
    with pytest.raises(tidings.ConfigurationError, match="not valid base64"):
        WebhookReceiver(watch, secret="whsec_!!!!")
    with pytest.raises(tidings.ConfigurationError), receive(watch, secret="whsec_not base64"):
        pass
    assert verify("whsec_c2VjcmV0", {**forged, "webhook-signature": sign("whsec_c2VjcmV0", "m1", stamp, body)},
                  body) == "m1"


# -- 7: an overall deadline per request ---------------------------------------------------------------


async def _dripping(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A server that sends one byte every 0.2 s until the client leaves (no read timeout ever fires)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    async with anyio.create_task_group() as tg:

        async def until_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(until_gone)
        while True:
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await anyio.sleep(0.2)


async def test_a_dripping_server_meets_the_request_deadline() -> None:
    with serve_asgi(_dripping, name="dripping") as url:
        http = HTTP(provider="p", base_url=url, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(tidings.TransientError, match="deadline of 1s"):
            await http.get_json("x")
        assert time.monotonic() - started < 5
        await http.aclose()
    watch = tidings.Watch("request-status", base_url="https://a.test", request_deadline=2.5)
    assert watch.request_deadline == 2.5


# -- 8: overflowing times, an empty list, unusable ids ------------------------------------------------


def test_parse_time_overflow_is_a_value_error_and_financing_dead_letters_it() -> None:
    from tidings_financing_activity.plugin import parse_event

    for value in (1e21, -1e21, "1e21", float("inf"), 10**400, "9" * 30, "9999-12-31T23:59:59-01:00"):
        with pytest.raises(ValueError):
            tidings.parse_time(value)
    assert tidings.parse_time(0) == datetime(1970, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(tidings.ParseError, match="event_date_time"):
        parse_event({"event_identification": "e1", "event_date_time": 1e21})


async def test_request_status_reads_an_empty_list_as_a_transient_fault() -> None:
    from tidings_request_status import plugin as request_status

    http = HTTP(provider="request-status", base_url="https://a.test", transport=_answer(b"[]"))
    with pytest.raises(tidings.TransientError, match="got list"):
        await request_status.fetch_page(_ctx(http), request_status.RequestStatusCursor())
    await http.aclose()


@pytest.mark.parametrize("bad_id", ["x" * 1_000_000, "a\ud800b", "a\x00b" * 3, "http://[::1"])
async def test_ids_no_url_can_carry_are_a_typed_error(bad_id: str) -> None:
    http = HTTP(provider="p", base_url="https://a.test", transport=_answer(b"{}"))
    with pytest.raises(tidings.TidingsError):
        await http.get_json(f"calls/{bad_id}")
    if "\ud800" in bad_id:  # a query value is percent-encoded: only text no encoding takes fails there
        with pytest.raises(tidings.TidingsError):
            await http.get_json("calls", params={"id": bad_id})
    await http.aclose()


# -- 9: the origin check compares scheme, host and port, and refuses user info -------------------------


def test_links_must_keep_scheme_host_and_port_and_carry_no_user_info() -> None:
    http = HTTP(provider="p", base_url="http://127.0.0.1:5000/api")
    assert str(http.url("http://127.0.0.1:5000/api/next?p=2")).endswith("p=2")
    assert str(http.url("events")) == "http://127.0.0.1:5000/api/events"
    for foreign in ("http://127.0.0.1:6000/api", "https://127.0.0.1:5000/api", "ws://127.0.0.1:5000/api",
                    "http://user:pw@127.0.0.1:5000/api", "http://user@127.0.0.1:5000/api", "http://127.0.0.1/api",
                    "http://127.0.0.2:5000/api", "evil:thing"):
        with pytest.raises(tidings.ForeignHostError) as info:
            http.url(foreign)
        assert "pw@" not in str(info.value)
    https = HTTP(provider="p", base_url="https://a.test")
    assert https.url("https://a.test:443/x").host == "a.test"  # the default port, written out
    with pytest.raises(tidings.ForeignHostError):
        https.url("http://a.test/x")


# -- 10 and 11: one token request at a time; a revoked token is survived ----------------------------------


class TokenServer:
    """Issues tokens ``t0, t1…``; those in ``revoked`` are refused by the API from the start."""

    def __init__(self, revoked: set[int] | None = None, delay: float = 0.0) -> None:
        self.issued: list[str] = []
        self.revoked = {f"t{i}" for i in revoked or ()}
        self.delay = delay
        self.api_calls = 0

    async def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            await anyio.sleep(self.delay)
            token = f"t{len(self.issued)}"
            self.issued.append(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 3600})
        self.api_calls += 1
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json={"events": []})


async def test_concurrent_first_requests_share_one_token_request() -> None:
    server = TokenServer(delay=0.05)
    auth = tidings.OAuth2ClientCredentials("https://a.test/oauth/token", "c", SECRET)
    http = HTTP(provider="p", base_url="https://a.test", auth=auth, transport=httpx.MockTransport(server.handler))
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(http.get_json, "x")
    assert server.issued == ["t0"]
    await http.aclose()


async def test_revoked_tokens_are_refreshed_and_retried_within_the_budget(tiny_feed: Any) -> None:
    server = TokenServer(revoked={0, 1, 2})  # the first three tokens are revoked: a fresh one works
    auth = tidings.OAuth2ClientCredentials("https://tiny.test/oauth/token", "c", SECRET)
    watch = make_watch(TinyServer(), auth=auth, transport=httpx.MockTransport(server.handler))
    assert await watch.collect() == []
    assert server.issued == ["t0", "t1", "t2", "t3"] and watch.stats.retries == 1
    # a provider refusing every token is still an error, once the retry budget is spent
    server.revoked = {f"t{i}" for i in range(100)}
    watch = make_watch(TinyServer(), auth=auth, transport=httpx.MockTransport(server.handler), max_retries=2)
    with pytest.raises(tidings.RetriesExhausted, match="freshly issued token"):
        await watch.collect()

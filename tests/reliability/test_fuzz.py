"""Hypothesis against every provider's readers: whatever the wire sends, only TidingsError escapes.

For each of the five providers: ``parse_event`` on any JSON value, ``fetch_page`` on any status and
body (JSON of any shape, deep nesting, bytes that are not JSON), ``start`` on any answer to the
request that submits work, and the webhook receiver's ``parse_webhook`` on any body. An answer
may be refused (a typed error) but never crash the watch with a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
import tidings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tidings._plugins import ProviderHooks, await_me_maybe
from tidings.testing import context_for

PROVIDERS = ["financing-activity", "opentransact", "request-status", "aml-session", "bank-sync"]
PARAMS: dict[str, dict[str, Any]] = {
    "aml-session": {"country": "no", "identifier": "910015838"},
    "bank-sync": {"connection_id": "c1"},
    "request-status": {"request_id": "r1"},
}
STREAMS = {
    "aml-session": tidings.Stream("s1", subjects=frozenset({"s1"}), data={"sessionId": "s1"}),
    "bank-sync": tidings.Stream("q1", subjects=frozenset({"c1"}), data={"queue_id": "q1", "connections": ["c1"]}),
    "request-status": tidings.Stream("r1", subjects=frozenset({"call:r1"})),
}
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
# records shaped like the providers' own, with any value in any field: reaches deeper than random JSON
FIELDS = ["id", "type", "attributes", "created-at", "updated-at", "status", "requestId", "errorCode", "content",
          "pageable", "event_identification", "event_date_time", "event_details", "service_name", "sessionId",
          "results", "event_type", "creation_date", "resource", "resource_type", "events", "data", "links",
          "timestamp", "bulk", "totalPages", "next", "meta", "connection_links"]
shaped = st.recursive(
    scalars | st.sampled_from(["SUCCESS", "OPEN", "AllDone", "SYNC_ALL_SUCCESS", "2024-01-01T00:00:00Z", "1e21"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=6),
    max_leaves=30,
)
bodies = (
    (json_values | shaped).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
    | st.sampled_from([b"", b"[]", b"{}", b"null", b'{"events": [', b"\xff\xfe", b'{"a": 1e999}'])
)
statuses = st.sampled_from([200, 200, 200, 201, 202, 204, 400, 401, 404, 409, 429, 500, 503])


def _context(provider: str, http: tidings.HTTP, stream: tidings.Stream | None = None) -> tidings.WatchContext:
    return context_for(provider, PARAMS.get(provider, {}), http=http, stream=stream, watch="fuzz",
                       base_url="https://fuzz.test")


def _http(status: int, body: bytes) -> tidings.HTTP:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    return tidings.HTTP(provider="fuzz", base_url="https://fuzz.test", transport=httpx.MockTransport(handler))


def _cursor(provider: str) -> Any:
    return tidings.providers()[provider].info.cursor_type()


async def _only_typed_errors(call: Any) -> Any:
    try:
        return await await_me_maybe(call())
    except tidings.TidingsError:
        return None


@pytest.mark.parametrize("provider", PROVIDERS)
@given(record=json_values | shaped)
@EXAMPLES
def test_parse_event_raises_only_typed_errors(provider: str, record: Any) -> None:
    hooks = ProviderHooks(tidings.providers()[provider])
    ctx = _context(provider, _http(200, b"{}"), STREAMS.get(provider))
    event = anyio.run(_only_typed_errors, lambda: hooks.caller("parse_event")(ctx=ctx, record=record))
    assert event is None or isinstance(event, tidings.Event)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("provider", PROVIDERS)
@given(status=statuses, body=bodies)
@EXAMPLES
def test_page_readers_raise_only_typed_errors(provider: str, backend: str, status: int, body: bytes) -> None:
    hooks = ProviderHooks(tidings.providers()[provider])

    async def read() -> Any:
        http = _http(status, body)
        try:
            ctx = _context(provider, http, STREAMS.get(provider))
            return await _only_typed_errors(lambda: hooks.caller("fetch_page")(ctx=ctx, cursor=_cursor(provider)))
        finally:
            await http.aclose()

    page = anyio.run(read, backend=backend)
    assert page is None or isinstance(page, tidings.Page)


@pytest.mark.parametrize("provider", ["aml-session", "bank-sync", "request-status"])
@given(status=statuses.filter(lambda s: s not in (429, 503)), body=bodies)  # busy: only the plugin's own waits
@EXAMPLES
def test_start_answers_raise_only_typed_errors(provider: str, status: int, body: bytes, tmp_path_factory: Any) -> None:
    hooks = ProviderHooks(tidings.providers()[provider])
    params = {**PARAMS[provider], "start_attempts": "1"} if provider == "bank-sync" else dict(PARAMS[provider])
    if provider == "request-status":  # a bulk call is the start request that reads an answer
        bulk = tmp_path_factory.mktemp("bulk") / "bulk.json"
        bulk.write_text('[{"subscriberIdentifiers": {"type": "ICCID", "value": "1"}, "content": {}}]')
        params = {"bulk_file": str(bulk)}

    async def begin() -> Any:
        http = _http(status, body)
        try:
            ctx = context_for(provider, params, http=http, watch="fuzz", base_url="https://fuzz.test")
            with anyio.fail_after(30):  # the plugin's own retries of a busy answer wait a little
                return await _only_typed_errors(lambda: hooks.caller("start")(ctx=ctx))
        finally:
            await http.aclose()

    streams = anyio.run(begin)
    assert streams is None or all(isinstance(s, tidings.Stream) for s in streams)


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if ProviderHooks(tidings.providers()[p]).implements(
    "parse_webhook")])
@given(body=bodies)
@EXAMPLES
def test_webhook_bodies_raise_only_typed_errors(provider: str, body: bytes) -> None:
    hooks = ProviderHooks(tidings.providers()[provider])
    ctx = _context(provider, _http(200, b"{}"))
    try:
        pushes = hooks.caller("parse_webhook")(ctx=ctx, headers={}, body=body)
    except (tidings.TidingsError, ValueError):  # the receiver answers both with 400
        return
    assert all(isinstance(p, tidings.Push) for p in pushes)

"""The seed's JSON examples, copied verbatim into tests/data, parse into the plugin's records and events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import tidings
from tidings.testing import context_for
from tidings_request_status import ErrorResponse, InnerRequest, RequestStatusCursor, StatusPage
from tidings_request_status import plugin as rs

DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def context(body: Any, *, status: int = 200, key: str = "77022d89-8a5b-4ecb-a118-334c7ccb3779") -> tidings.WatchContext:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    http = tidings.HTTP(provider=rs.NAME, base_url="https://iot.test", transport=httpx.MockTransport(answer))
    return context_for(rs.NAME, {}, http=http, stream=tidings.Stream(key, frozenset({key})), watch="w")


def test_success_ack_structures() -> None:
    page = tidings.structure(load("status_success_ack.json"), StatusPage)
    assert page.error_code == ""
    assert page.content == [
        InnerRequest("77022d89-8a5b-4ecb-a118-334c7ccb3779", "SUCCESS"),
        InnerRequest("6c4480ea-3f3d-4fa7-9517-34e08902d6f9", "FAILURE"),
    ]
    assert page.pageable is not None
    assert (page.pageable.page, page.pageable.size, page.pageable.total_pages, page.pageable.total_elements) == (
        0, 10, 1, 1,
    )


def test_failure_nak_structures() -> None:
    nak = tidings.structure(load("status_failure_nak.json"), ErrorResponse)
    assert nak.error_code == "GLOBAL_1003"
    assert nak.content == ""
    assert nak.pageable is None


def test_success_ack_items_become_terminal_events() -> None:
    ctx = context(None)
    events = [rs.parse_event(ctx, item) for item in load("status_success_ack.json")["content"]]
    assert [(e.id, e.subject, e.type, e.status, e.terminal) for e in events] == [
        ("77022d89-8a5b-4ecb-a118-334c7ccb3779:SUCCESS", "77022d89-8a5b-4ecb-a118-334c7ccb3779",
         "request.success", "SUCCESS", True),
        ("6c4480ea-3f3d-4fa7-9517-34e08902d6f9:FAILURE", "6c4480ea-3f3d-4fa7-9517-34e08902d6f9",
         "request.failure", "FAILURE", True),
    ]
    assert events[0].record == InnerRequest("77022d89-8a5b-4ecb-a118-334c7ccb3779", "SUCCESS")
    assert events[0].raw == {"requestId": "77022d89-8a5b-4ecb-a118-334c7ccb3779", "status": "SUCCESS"}
    assert events[0].occurred_at.utcoffset() is not None


@pytest.mark.anyio
async def test_success_ack_fetched_ends_the_id() -> None:
    body = load("status_success_ack.json")
    ctx = context(body)
    page = await rs.fetch_page(ctx, RequestStatusCursor())
    await ctx.http.aclose()
    assert list(page.records) == body["content"]
    assert page.more is False
    assert page.ended == frozenset({ctx.stream.key})


@pytest.mark.anyio
@pytest.mark.parametrize("status", [200, 404])
async def test_failure_nak_fetched_is_one_terminal_unknown_event(status: int) -> None:
    body = load("status_failure_nak.json")
    ctx = context(body, status=status)
    page = await rs.fetch_page(ctx, RequestStatusCursor())
    await ctx.http.aclose()
    assert list(page.records) == [body]
    assert page.ended == frozenset({ctx.stream.key})
    event = rs.parse_event(ctx, page.records[0])
    assert (event.id, event.subject, event.type, event.status, event.terminal) == (
        f"{ctx.stream.key}:GLOBAL_1003", ctx.stream.key, "request.unknown", "GLOBAL_1003", True,
    )
    assert event.raw == body
    assert event.record == ErrorResponse("GLOBAL_1003", "Provided request ID does not exist for your account")


def test_missing_field_names_field_and_id() -> None:
    with pytest.raises(tidings.ParseError, match=r"'abc'.*'status'"):
        rs.parse_event(context(None), {"requestId": "abc"})

"""The seed's own 200 example, verbatim: it parses, and its links lead nowhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import tidings
from tidings_financing_activity import ActivityEvent, ActivityPage
from tidings_financing_activity.plugin import parse_event

DATA = Path(__file__).parent / "data"


def seed_body() -> dict[str, Any]:
    return json.loads((DATA / "activity-200.json").read_text())


def test_seed_example_parses_verbatim() -> None:
    body = seed_body()
    page = tidings.structure(body, ActivityPage)
    assert [link.rel for link in page.links] == ["self", "first", "next", "previous", "last"]
    (record,) = body["events"]
    event = parse_event(record=record)
    assert event.id == "38b222e2-19d7-417f-b84b-a72da118287f"
    assert event.subject == "8ecef726-f12e-40b9-9722-8878a8d33bc5"
    assert event.type == "FING_duplicate_financing_check"
    assert event.status == "DFIN"
    assert event.occurred_at == tidings.parse_time("2021-03-29T11:01:43Z")
    assert event.raw is record
    typed = event.record
    assert isinstance(typed, ActivityEvent)
    assert typed.financing_status == "DFIN"
    assert typed.match_type == "EXCT"
    assert typed.request_identifications == (
        "9ef2ee9c-a2b7-49bc-a5a9-ef65b4972eab",
        "0341ef0c-4da5-4fb6-b6fc-db5f0efb42dd",
    )
    assert typed.event_details[1].registered_document_identification == "b1b44706-4fc6-4fb3-93de-0fb4846e9c84"


def test_unknown_fields_are_kept_in_raw_and_tolerated() -> None:
    record = {**seed_body()["events"][0], "new_field": {"x": 1}}
    event = parse_event(record=record)
    assert event.raw["new_field"] == {"x": 1}
    assert event.record.event_identification == record["event_identification"]


@pytest.mark.parametrize("field", ["event_identification", "event_date_time"])
def test_missing_required_field_names_field_and_id(field: str) -> None:
    record = dict(seed_body()["events"][0])
    del record[field]
    with pytest.raises(tidings.ParseError) as info:
        parse_event(record=record)
    assert field in str(info.value)
    if field != "event_identification":
        assert "38b222e2-19d7-417f-b84b-a72da118287f" in str(info.value)


def test_bad_time_and_bad_details_are_parse_errors() -> None:
    record = dict(seed_body()["events"][0])
    with pytest.raises(tidings.ParseError, match="event_date_time"):
        parse_event(record={**record, "event_date_time": "yesterday"})
    with pytest.raises(tidings.ParseError, match="event_details"):
        parse_event(record={**record, "event_details": "DFIN"})


@pytest.mark.anyio
async def test_seed_links_do_not_lead_the_client_anywhere() -> None:
    """The seed body (links to developer.swift.com, ``limit=20,offset=40``) served as is: the
    client pages by its own offset on the configured host, and never the link's."""
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.params["offset"] == "0":
            return httpx.Response(200, content=(DATA / "activity-200.json").read_bytes())
        return httpx.Response(200, json={"links": seed_body()["links"], "events": []})

    watch = tidings.Watch(
        "financing-activity",
        base_url="https://api.uat.securefinancing.com/v1",
        token="t",
        transport=httpx.MockTransport(handler),
        page_size=1,
        until_idle=True,
        interval=0,
        max_interval=0.01,
    )
    events = await watch.collect()
    assert [e.id for e in events] == ["38b222e2-19d7-417f-b84b-a72da118287f"]
    assert {u.host for u in seen} == {"api.uat.securefinancing.com"}
    assert all(u.path == "/v1/activity" for u in seen)
    assert [(u.params["limit"], u.params["offset"]) for u in seen[:2]] == [("1", "0"), ("1", "1")]
    assert not any("40" == u.params["offset"] or "," in u.params["limit"] for u in seen)
    assert "before" not in seen[0].params

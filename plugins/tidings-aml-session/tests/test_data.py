"""The documents' JSON examples (tests/data, verbatim) parse, and the emulator speaks the same shapes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import tidings
import tidings_aml_session
from tidings_aml_session import SessionCreated, SessionEvent, SessionState, WebhookNotice, plugin, state_records

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def events_of(name: str) -> list[tidings.Event]:
    raw = load(name)
    return [plugin.parse_event(r) for r in state_records(raw["sessionId"], raw)]


def test_the_providers_results_example() -> None:
    results = load("results-example.json")  # {"jsonData": "IN_PROGRESS", "aml-report": "NOT_STARTED"}
    state = tidings.structure({"sessionId": "s", "status": "IN_PROGRESS", "results": results}, SessionState)
    assert list(state.results) == ["jsonData", "aml-report"]
    assert state_records("s", {"status": "IN_PROGRESS", "results": results}) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("session-in-progress.json", ["JsonDataReady"]),
        ("session-all-done.json", ["JsonDataReady", "ReportReady:aml-report", "AllDone"]),
        ("session-failed.json", ["JsonDataReady", "Failed"]),
    ],
)
def test_session_states_become_events_in_order(name: str, expected: list[str]) -> None:
    events = events_of(name)
    sid = load(name)["sessionId"]
    assert [e.id for e in events] == [f"{sid}:{x}" for x in expected]
    assert [e.terminal for e in events] == [x in ("AllDone", "Failed") for x in expected]
    for event in events:
        record = event.record
        assert isinstance(record, SessionEvent) and isinstance(record.session, SessionState)
        assert event.occurred_at.utcoffset().total_seconds() == 0
        assert event.raw == load(name)  # the status body exactly as received


def test_created_and_webhook_examples() -> None:
    assert tidings.structure(load("session-created.json"), SessionCreated).session_id.startswith("3f1c2a9e")
    notice = tidings.structure(load("webhook-report-ready.json"), WebhookNotice)
    assert notice.status == "ReportReady" and notice.timestamp is not None and notice.timestamp.year == 2024
    body = (DATA / "webhook-report-ready.json").read_bytes()
    assert plugin.parse_webhook({}, body) == [tidings.Push(stream=notice.session_id)]


def test_a_record_missing_a_field_is_a_parse_error_naming_it() -> None:
    with pytest.raises(tidings.ParseError, match="sessionId"):
        plugin.parse_event({"status": "AllDone"})
    with pytest.raises(tidings.ParseError, match="entity"):
        plugin.parse_event({"sessionId": "s", "status": "ReportReady"})
    with pytest.raises(tidings.ParseError, match="unknown"):
        plugin.parse_event({"sessionId": "s", "status": "Exploded"})


@pytest.mark.anyio
async def test_the_emulator_accepts_the_request_example_and_validates(emulator) -> None:
    headers = {"authorization": f"Bearer {emulator.token}"}
    async with httpx.AsyncClient(transport=emulator.transport(), base_url=emulator.base_url) as client:
        answer = await client.post("/organization/session/no", json=load("session-request.json"), headers=headers)
        assert answer.status_code == 201 and answer.json()["sessionId"]
        for country in ("se", "fi"):
            body = {"identifier": "5560000001", "nationality": country.upper()}
            answer = await client.post(f"/organization/session/{country}", json=body, headers=headers)
            assert answer.status_code == 201
        assert (await client.post("/organization/session/dk", json={}, headers=headers)).status_code == 404
        bad = {"nationality": "NO"}
        assert (await client.post("/organization/session/no", json=bad, headers=headers)).status_code == 400
        assert (await client.post("/organization/session/no", json=load("session-request.json"))).status_code == 401
        assert (await client.get("/organization/session/unknown", headers=headers)).status_code == 404


def test_all_is_complete() -> None:
    public = {n for n in vars(tidings_aml_session) if not n.startswith("_")} - {"annotations", "emulator", "models",
                                                                                  "plugin"}
    assert public <= set(tidings_aml_session.__all__)
    for name in tidings_aml_session.__all__:
        assert hasattr(tidings_aml_session, name)

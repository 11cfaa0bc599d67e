"""Sessions that succeed and fail: right events, right order, exactly once, whatever the webhooks do."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
import tidings
from aml_session_helpers import FAIL_ORG, OK_ORG, REPORTS, SECRET, follow, kinds, make_emulator, make_watch
from tidings.webhooks import receive

pytestmark = pytest.mark.anyio

SUCCESS = ["JsonDataReady", "ReportReady:aml-report", "ReportReady:sanctions-report", "AllDone"]
FAILURE = ["JsonDataReady", "Failed"]


@pytest.mark.parametrize("mode", ["on_time", "late", "twice", "never"])
@pytest.mark.parametrize(("org", "expected"), [(OK_ORG, SUCCESS), (FAIL_ORG, FAILURE)], ids=["succeeds", "fails"])
async def test_events_in_order_exactly_once_whatever_the_webhooks(mode: str, org: str, expected: list[str]) -> None:
    emulator = make_emulator(webhook_secret=SECRET, webhooks=mode, json_last=mode == "never")
    params = {"country": "no", "identifier": org, "reports": REPORTS}
    # polling alone would take 2 s; webhooks on time make the stream poll at once
    slow = 0.5 if mode == "never" else 2.0
    watch = make_watch(emulator, params, interval=slow, max_interval=slow)
    started = time.monotonic()
    with receive(watch, "127.0.0.1:0", secret=SECRET):  # what tidings follow --webhook-listen serves
        events = await follow(emulator, watch)
    elapsed = time.monotonic() - started

    assert kinds(events) == expected
    assert not [i for i, n in Counter(e.id for e in events).items() if n > 1]
    assert [e.terminal for e in events] == [False] * (len(expected) - 1) + [True]
    session_id = emulator.latest[org]
    assert {e.subject for e in events} == {session_id}
    assert {e.id for e in events} == emulator.final_event_ids(session_id)
    sent = [w["status"] for w in emulator.webhook_log]
    if mode == "never":
        assert sent == []
    if mode in ("on_time", "twice"):
        assert sent[0] == "JsonDataReady"
        assert elapsed < 1.5, f"webhooks did not cut the poll wait short ({elapsed:.2f}s)"
    # nothing refused: every webhook was signed correctly. 503: it came after the watch ended (the receiver
    # still listening); None: after the receiver closed too. Neither happens while the watch runs.
    answers = [w["answer"] for w in emulator.webhook_log]
    assert set(answers) <= {200, 503, None}
    ended = [i for i, a in enumerate(answers) if a != 200]
    assert all(a != 200 for a in answers[ended[0]:]) if ended else True, answers


async def test_a_batch_is_one_stream_per_session_with_bounded_concurrency() -> None:
    emulator = make_emulator()
    in_flight = peak = 0
    inner = emulator.transport()

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await anyio.sleep(0.005)
                return await inner.handle_async_request(request)
            finally:
                in_flight -= 1

    orgs = [f"91{i:07d}" for i in range(7)] + [FAIL_ORG]
    params = {"country": "se", "identifier": orgs, "reports": "aml-report"}
    watch = make_watch(emulator, params, transport=Counting(), max_per_host=2)
    events = await follow(emulator, watch)
    assert watch.stats.streams == 8 == watch.stats.streams_ended
    assert peak <= 2
    by_session: dict[str, list[str]] = {}
    for event in events:
        by_session.setdefault(event.subject or "", []).append(event.type)
    assert len(by_session) == 8
    for org in orgs:
        expected = ["JsonDataReady", "Failed"] if org == FAIL_ORG else ["JsonDataReady", "ReportReady", "AllDone"]
        assert by_session[emulator.latest[org]] == expected
    assert {r["nationality"] for r in emulator.session_requests} == {"SE"}


async def test_follows_an_existing_session(emulator: Any) -> None:
    from tidings_aml_session import start_session

    async with httpx.AsyncClient(transport=emulator.transport()) as client:
        http = tidings.HTTP(provider="aml-session", base_url=emulator.base_url, client=client,
                            auth=tidings.BearerToken(emulator.token))
        created = await start_session(http, "fi", OK_ORG, reports=["aml-report"])
    watch = make_watch(emulator, {"session_id": created.session_id})
    events = await follow(emulator, watch)
    assert [e.type for e in events] == ["JsonDataReady", "ReportReady", "AllDone"]
    assert emulator.session_requests[0]["nationality"] == "FI"


async def test_unknown_session_ends_the_watch_with_a_clear_error(emulator: Any) -> None:
    watch = make_watch(emulator, {"session_id": "no-such-session"})
    with pytest.raises(tidings.ProviderHTTPError, match="unknown to the provider"):
        await follow(emulator, watch)


async def test_unknown_country_is_refused_before_any_request(emulator: Any) -> None:
    watch = make_watch(emulator, {"country": "dk", "identifier": OK_ORG})
    with pytest.raises(tidings.ConfigurationError, match="no, se, fi"):
        await follow(emulator, watch)
    assert emulator.requests == []


async def test_start_survives_transient_faults_on_the_post(emulator: Any) -> None:
    emulator.faults.retry_after = 0.01
    for kind in ("503", "429", "reset", "truncated"):
        emulator.faults.fail_next(kind)
    watch = make_watch(emulator, {"country": "no", "identifier": OK_ORG})
    events = await follow(emulator, watch)
    assert kinds(events) == ["JsonDataReady", "AllDone"]
    assert events[0].subject == emulator.latest[OK_ORG]

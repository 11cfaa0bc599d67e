"""Following request ids against the emulator: pages, finishing times, error codes, faults, auth, start paths."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
import tidings
from starlette.responses import JSONResponse
from starlette.routing import Route
from tidings.sandbox import Clock
from tidings_request_status import FINAL_STATUSES, RequestStatusCursor, RequestStatusEmulator
from tidings_request_status import plugin as rs

pytestmark = pytest.mark.anyio


def emulator(**kwargs: Any) -> RequestStatusEmulator:
    kwargs.setdefault("clock", Clock(speed=40.0))
    return RequestStatusEmulator(seed=3, **kwargs)


def watch(emu: RequestStatusEmulator, params: dict[str, Any], **overrides: Any) -> tidings.Watch:
    options: dict[str, Any] = {
        "base_url": emu.base_url,
        "token": emu.token,
        "transport": emu.transport(),
        "params": params,
        "page_size": 3,
        "interval": 0.01,
        "max_interval": 0.04,
        "retry_base_wait": 0.01,
        "retry_max_wait": 0.05,
    }
    options.update(overrides)
    return tidings.Watch("request-status", **options)


async def read(w: tidings.Watch) -> list[tidings.Event]:
    got: list[tidings.Event] = []
    with anyio.fail_after(30):
        await w.run(got.append)
    return got


def reads_of(emu: RequestStatusEmulator, request_id: str) -> int:
    return sum(1 for _, path in emu.requests if path.startswith(f"/api/v3/global/call/{request_id}"))


@pytest.mark.parametrize("order", ["stable", "shuffled"])
async def test_bulk_ids_over_pages_deliver_every_final_status_once_and_end(order: str) -> None:
    emu = emulator(order=order)
    ids = [emu.add_call(inner, due=(0.5, 6.0)) for inner in (7, 5, 1, 10)]
    w = watch(emu, {"request_id": ids})
    events = await read(w)

    assert w.stats.streams == w.stats.streams_ended == len(ids)
    counts = Counter(e.id for e in events)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    for request_id in ids:
        for inner in emu.calls[request_id]:
            assert counts[f"{inner.request_id}:{inner.final}"] == 1
            mine = [e for e in events if e.subject == inner.request_id]
            assert [e.status for e in mine] == ["OPEN", inner.final]  # OPEN first, then final
            assert [e.terminal for e in mine] == [False, True]
    assert all(e.status in FINAL_STATUSES for e in events if e.terminal)
    # every id's inner requests really crossed several pages of 3
    assert any("page=3" in path for _, path in emu.requests)


async def test_ids_finish_at_different_times_and_stop_being_polled() -> None:
    emu = emulator(min_open_polls=1)
    quick = emu.add_call(4, due=(0.0, 0.1))
    slow = emu.add_call(4, due=(20.0, 24.0))
    w = watch(emu, {"request_id": [quick, slow]})
    events = await read(w)
    quick_inner = {i.request_id for i in emu.calls[quick]}
    slow_inner = {i.request_id for i in emu.calls[slow]}
    last_quick = max(i for i, e in enumerate(events) if e.terminal and e.subject in quick_inner)
    first_slow = min(i for i, e in enumerate(events) if e.terminal and e.subject in slow_inner)
    assert last_quick < first_slow
    # once ended, the quick id is not polled while the slow one goes on
    assert reads_of(emu, quick) < reads_of(emu, slow)


async def test_open_id_is_polled_with_backoff() -> None:
    emu = emulator(clock=Clock(speed=1.0))
    slow = emu.add_call(1, due=(3600.0, 3600.0))
    w = watch(emu, {"request_id": [slow]}, interval=0.02, max_interval=0.16)
    with anyio.move_on_after(0.8):
        await read(w)
    # without backoff 0.8 s / 0.02 s = 40 polls; doubling to 0.16 s leaves about a dozen
    assert 4 <= reads_of(emu, slow) <= 15


@pytest.mark.parametrize("busy_status", [200, 503])
async def test_global_1001_is_retried_with_backoff(busy_status: int) -> None:
    emu = emulator(busy_status=busy_status)
    request_id = emu.add_call(2)
    emu.busy_next(3)
    w = watch(emu, {"request_id": [request_id]})
    events = await read(w)
    assert w.stats.retries >= 3
    assert not emu.busy
    assert {e.status for e in events if e.terminal} <= FINAL_STATUSES
    assert sum(e.terminal for e in events) == 2


async def test_global_1001_beyond_the_retry_budget_gives_up_with_the_code() -> None:
    emu = emulator()
    request_id = emu.add_call(1)
    emu.busy_next(5)
    w = watch(emu, {"request_id": [request_id]}, max_retries=2)
    with pytest.raises(tidings.RetriesExhausted) as info:
        await read(w)
    cause = info.value.__cause__
    assert isinstance(cause, tidings.TransientError) and cause.code == "GLOBAL_1001"


@pytest.mark.parametrize("unknown_status", [200, 404])
async def test_global_1003_ends_the_id_at_once_and_is_never_retried(unknown_status: int) -> None:
    emu = emulator(unknown_status=unknown_status)
    known = emu.add_call(3)
    unknown = emu.new_id()
    w = watch(emu, {"request_id": [unknown, known]})
    events = await read(w)
    errors = [e for e in events if e.subject == unknown]
    assert [(e.id, e.type, e.status, e.terminal) for e in errors] == [
        (f"{unknown}:GLOBAL_1003", "request.unknown", "GLOBAL_1003", True)
    ]
    assert errors[0].raw["content"] == "" and errors[0].raw["pageable"] is None
    assert reads_of(emu, unknown) == 1
    assert w.stats.retries == 0
    assert w.stats.streams_ended == 2
    assert sum(e.terminal for e in events) == 4


@pytest.mark.parametrize("kind", ["500", "502", "503", "429"])
async def test_5xx_and_429_are_retried(kind: str) -> None:
    emu = emulator()
    emu.faults.retry_after = 0.3
    request_id = emu.add_call(2)
    emu.faults.fail_next(kind, 2)
    w = watch(emu, {"request_id": [request_id]})
    began = time.monotonic()
    events = await read(w)
    assert emu.faults.served[kind] == 2
    assert w.stats.retries >= 2
    assert sum(e.terminal for e in events) == 2
    if kind == "429":
        assert time.monotonic() - began >= 0.6  # Retry-After: 0.3 honoured twice


async def test_another_error_code_in_a_200_ends_the_id_with_an_error_event() -> None:
    emu = emulator()

    async def odd(request: Any) -> Any:
        return JSONResponse({"errorCode": "GLOBAL_1005", "errorMessage": "Something else", "content": "",
                             "pageable": None})

    emu.routes = lambda: [Route("/api/v3/global/call/{id}", odd)]
    w = watch(emu, {"request_id": ["abc"]})
    events = await read(w)
    assert [(e.id, e.type, e.status, e.terminal) for e in events] == [
        ("abc:GLOBAL_1005", "request.error", "GLOBAL_1005", True)
    ]


async def test_plain_404_is_a_configuration_problem_not_an_unknown_id() -> None:
    emu = emulator()
    request_id = emu.add_call(1)
    w = watch(emu, {"request_id": [request_id], "status_path": "api/v9/nowhere/{id}"})
    with pytest.raises(tidings.ProviderHTTPError):
        await read(w)


async def test_wrong_token_is_refused() -> None:
    emu = emulator()
    w = watch(emu, {"request_id": [emu.add_call(1)]}, token="wrong")
    with pytest.raises(tidings.AuthenticationError):
        await read(w)


async def test_api_key_header_auth() -> None:
    emu = emulator(api_key_header="X-API-Key")
    request_id = emu.add_call(2)
    events = await read(watch(emu, {"request_id": [request_id], "auth_header": "X-API-Key"}))
    assert sum(e.terminal for e in events) == 2
    with pytest.raises(tidings.AuthenticationError):  # a bearer token is not what this server takes
        await read(watch(emu, {"request_id": [request_id]}))


def test_make_auth_choices() -> None:
    assert rs.make_auth("t", {}) is None  # the core's bearer token
    auth = rs.make_auth("t", {"auth_header": "X-API-Key"})
    assert isinstance(auth, tidings.ApiKeyHeader) and auth.header == "X-API-Key"


async def test_request_ids_file(tmp_path: Path) -> None:
    emu = emulator()
    ids = [emu.add_call(2) for _ in range(3)]
    path = tmp_path / "ids.txt"
    path.write_text(f"# my requests\n{ids[0]}\n\n{ids[1]}  # second\n{ids[2]}\n{ids[0]}\n")
    w = watch(emu, {"request_ids_file": str(path)})
    events = await read(w)
    assert w.stats.streams == 3
    assert sum(e.terminal for e in events) == 6


@pytest.mark.parametrize("follow", ["items", "call"])
async def test_bulk_file_is_submitted_in_calls_of_200_and_followed(tmp_path: Path, follow: str) -> None:
    emu = emulator(min_open_polls=1)
    items = [{"subscriberIdentifiers": {"type": "ICCID", "value": f"8900{i:06d}"}, "content": {"status": "ACTIVE"}}
             for i in range(450)]
    items.append({"content": {"status": "ACTIVE"}})  # refused by the server: no subscriberIdentifiers
    path = tmp_path / "bulk.json"
    path.write_text(json.dumps(items))
    w = watch(emu, {"bulk_file": str(path), "bulk_follow": follow}, page_size=100, max_per_host=32)
    events = await read(w)
    bulk_calls = [p for m, p in emu.requests if m == "PUT"]
    assert len(bulk_calls) == 3
    assert w.stats.streams == (450 if follow == "items" else 3)
    assert w.stats.streams_ended == w.stats.streams
    assert sum(e.terminal for e in events) == 450


def test_no_id_is_a_configuration_error() -> None:
    emu = emulator()
    w = watch(emu, {})
    with pytest.raises(tidings.ConfigurationError, match="request_id"):
        anyio.run(read, w)


def test_a_final_status_never_goes_back() -> None:
    cursor = RequestStatusCursor(statuses={"a": "SUCCESS", "b": "OPEN"})
    content = [{"requestId": "a", "status": "OPEN"}, {"requestId": "b", "status": "OPEN"}]
    page = rs._page_of(cursor, content, {"totalPages": 1, "totalElements": 2}, 10, "x")
    assert list(page.records) == []
    assert page.ended == frozenset()


def test_the_id_ends_only_when_every_item_the_server_counts_was_seen_final() -> None:
    # pages shifted: only 2 of 3 inner requests were ever seen, both final: not over yet
    cursor = RequestStatusCursor(page=1, statuses={"a": "SUCCESS"}, cycle_items=2)
    content = [{"requestId": "b", "status": "FAILURE"}]
    page = rs._page_of(cursor, content, {"totalPages": 2, "totalElements": 3}, 2, "x")
    assert page.ended == frozenset()
    assert page.advance is not None and page.advance(cursor).page == 0
    seen_all = RequestStatusCursor(page=1, statuses={"a": "SUCCESS", "c": "SUCCESS"}, cycle_items=2)
    assert rs._page_of(seen_all, content, {"totalPages": 2, "totalElements": 3}, 2, "x").ended == {"x"}


async def test_unreadable_item_is_dead_lettered_and_does_not_hold_the_id_open() -> None:
    emu = emulator()

    async def answer(request: Any) -> Any:
        return JSONResponse({"errorCode": "", "errorMessage": "", "content": [
            {"requestId": "a", "status": "SUCCESS"}, {"status": "SUCCESS"}],
            "pageable": {"page": 0, "size": 10, "totalPages": 1, "totalElements": 2}})

    emu.routes = lambda: [Route("/api/v3/global/call/{id}", answer)]
    w = watch(emu, {"request_id": ["x"]})
    events = await read(w)
    assert [e.id for e in events] == ["a:SUCCESS"]
    letters = await w.dead_letters()
    assert len(letters) == 1 and "requestId" in letters[0].reason


def test_status_letter_case_does_not_hide_a_final_status() -> None:
    content = [{"requestId": "a", "status": "success"}]
    page = rs._page_of(RequestStatusCursor(), content, {"totalPages": 1, "totalElements": 1}, 10, "x")
    assert page.ended == {"x"}
    event = rs.parse_event(None, content[0])  # type: ignore[arg-type]
    assert event.terminal and event.type == "request.success"


async def test_bad_page_size_is_a_configuration_error() -> None:
    emu = emulator()
    with pytest.raises(tidings.ConfigurationError, match="page_size"):
        await read(watch(emu, {"request_id": [emu.add_call(1)], "page_size": "ten"}, page_size=None))

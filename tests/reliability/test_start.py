"""Starting work once (issue 14 item 4): a cut-off answer or a crash never submits the work twice.

A crash between the start request and the first checkpoint is a store that dies when the
streams are saved (the moment after ``start`` returned); the next run, on the same store,
must follow what the first started without asking for it again.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import tidings

pytestmark = pytest.mark.anyio

FAST = {"interval": 0.0, "max_interval": 0.01, "retry_base_wait": 0.001, "retry_max_wait": 0.01}


class Crash(BaseException):
    """The process dying (nothing below catches a BaseException that is not an Exception)."""


class CrashingStore(tidings.MemoryStore):
    """Dies the first time the streams are saved: just after ``start`` returned."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True

    async def save_streams(self, watch: str, data: dict[str, Any]) -> None:
        if self.armed and data.get("streams") is not None:
            self.armed = False
            raise Crash
        await super().save_streams(watch, data)


class BulkServer:
    """PUT bulk -> one request id per item; GET call/{id} -> SUCCESS. ``cut`` cuts the next bulk answer."""

    def __init__(self) -> None:
        self.puts = 0
        self.cut = 0
        self.header = True

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.puts += 1
            items = json.loads(request.content)["bulk"]
            body = {"bulk": [{"requestId": f"r{self.puts}-{i}", "errorCode": None, **item} for i, item in
                             enumerate(items)]}
            headers = {"Request-Id": f"call{self.puts}"} if self.header else {}
            content = json.dumps(body).encode()
            if self.cut:
                self.cut -= 1
                content = content[: len(content) // 2]
            return httpx.Response(202, content=content, headers=headers)
        request_id = request.url.path.rsplit("/", 1)[-1]
        body = {"errorCode": "", "content": [{"requestId": request_id, "status": "SUCCESS"}],
                "pageable": {"page": 0, "size": 100, "totalPages": 1, "totalElements": 1}}
        return httpx.Response(200, json=body)


def _bulk_watch(tmp_path: Any, server: BulkServer, store: tidings.CheckpointStore) -> tidings.Watch:
    bulk = tmp_path / "bulk.json"
    bulk.write_text(json.dumps([{"subscriberIdentifiers": {"type": "ICCID", "value": str(i)},
                                 "content": {"status": "ACTIVE"}} for i in range(3)]))
    return tidings.Watch("request-status", base_url="https://rs.test", token="t", store=store,
                         params={"bulk_file": str(bulk)}, transport=httpx.MockTransport(server.handler), **FAST)


async def test_a_cut_off_bulk_answer_is_followed_by_its_request_id_not_sent_again(tmp_path: Any) -> None:
    server = BulkServer()
    server.cut = 1
    events = await _bulk_watch(tmp_path, server, tidings.MemoryStore()).collect()
    assert server.puts == 1
    assert {e.subject for e in events} == {"call1"}


async def test_a_cut_off_bulk_answer_without_a_request_id_is_reported_never_repeated(tmp_path: Any) -> None:
    server = BulkServer()
    server.cut, server.header = 1, False
    store = tidings.MemoryStore()
    with pytest.raises(tidings.StartOutcomeUnknown, match="not sent again"):
        await _bulk_watch(tmp_path, server, store).collect()
    with pytest.raises(tidings.StartOutcomeUnknown):  # a resume reports it again, and still sends nothing
        await _bulk_watch(tmp_path, server, store).collect()
    assert server.puts == 1


async def test_a_crash_after_the_bulk_call_resumes_with_its_ids(tmp_path: Any) -> None:
    server = BulkServer()
    store = CrashingStore()
    with pytest.raises(Crash):
        await _bulk_watch(tmp_path, server, store).collect()
    events = await _bulk_watch(tmp_path, server, store).collect()
    assert server.puts == 1
    assert sorted(e.subject for e in events) == ["r1-0", "r1-1", "r1-2"]


class SessionServer:
    """POST a session -> sessionId; GET it -> ALL_DONE."""

    def __init__(self) -> None:
        self.posts = 0
        self.cut = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.method == "POST":
            self.posts += 1
            content = json.dumps({"sessionId": f"s{self.posts}"}).encode()
            if self.cut:
                self.cut -= 1
                content = content[:5]
            return httpx.Response(201, content=content)
        session = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"sessionId": session, "status": "ALL_DONE", "results": {}})


def _session_watch(server: SessionServer, store: tidings.CheckpointStore) -> tidings.Watch:
    return tidings.Watch("aml-session", base_url="https://aml.test", token="t", store=store,
                         params={"country": "no", "identifier": ["111", "222"]},
                         transport=httpx.MockTransport(server.handler), **FAST)


async def test_a_crash_after_the_sessions_were_started_follows_them_without_new_ones() -> None:
    server = SessionServer()
    store = CrashingStore()
    with pytest.raises(Crash):
        await _session_watch(server, store).collect()
    events = await _session_watch(server, store).collect()
    assert server.posts == 2
    assert {e.subject for e in events} == {"s1", "s2"}


async def test_a_cut_off_session_answer_is_not_posted_again() -> None:
    server = SessionServer()
    server.cut = 1
    with pytest.raises(tidings.StartOutcomeUnknown, match="session:"):
        await _session_watch(server, tidings.MemoryStore()).collect()
    assert server.posts == 2  # one per identifier; the one cut off is not posted twice


class BankServer:
    """POST /queues -> a queue; POST synchronize -> 204 (409 while running); the queue ends the sync."""

    def __init__(self) -> None:
        self.queues = 0
        self.syncs = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.method == "POST" and path.endswith("/queues"):
            self.queues += 1
            return httpx.Response(201, json={"id": f"q{self.queues}"})
        if request.method == "POST":
            self.syncs += 1
            return httpx.Response(204)
        events = [{"id": "1", "event_type": "SYNC_ALL_SUCCESS", "resource_type": "connection",
                   "creation_date": 1700000000, "resource": {"id": "c1", "status": "SUCCESS"}}]
        return httpx.Response(200, json=events)


async def test_a_crash_after_subscribing_and_triggering_reuses_the_queue_and_does_not_trigger_again() -> None:
    server = BankServer()
    store = CrashingStore()

    def watch() -> tidings.Watch:
        return tidings.Watch("bank-sync", base_url="https://bank.test", token="t", store=store,
                             params={"connection_id": "c1"}, transport=httpx.MockTransport(server.handler), **FAST)

    with pytest.raises(Crash):
        await watch().collect()
    events = await watch().collect()
    assert (server.queues, server.syncs) == (1, 1)
    assert [e.type for e in events] == ["SYNC_ALL_SUCCESS"]


async def test_start_step_outside_a_watch_just_calls() -> None:
    async def call() -> int:
        return 7

    assert await tidings.start_step("k", call) == 7

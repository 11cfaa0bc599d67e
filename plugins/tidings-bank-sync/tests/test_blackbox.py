"""Black-box tests: the real ``tidings follow bank-sync`` command against an
independent emulator written from PROVIDERS.md and the seed only.

The emulator (``QueueServer``) is a plain Starlette app served on loopback. It
stacks events on queues over time with a global counter of numeric-string ids
starting at 1, keeps or removes events on reading, caps and orders its answers,
shapes channel events in several ways and injects faults (5xx, 429 with
Retry-After in seconds or as an HTTP date, truncated bodies, dropped
connections, slow answers, HTML error pages).
"""

from __future__ import annotations

import email.utils
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tidings._serve import serve_asgi

TOKEN = "bb-secret-token-4242"
TIDINGS = str(Path(sys.executable).with_name("tidings"))
T0 = 1528112000  # creation dates: epoch seconds (the seed's era)


class QueueServer:
    """An emulator of the bank synchronisation API and its event queues."""

    def __init__(
        self,
        *,
        destructive: bool = False,
        max_batch: int | None = None,
        newest_first: bool = False,
        step: float = 0.02,
        auth_shape: str = "channel",
        sync_after_auth_failed: bool = True,
        id_at_plan: bool = False,
        channels: int = 2,
        extra_per_channel: int = 2,
    ) -> None:
        self.destructive = destructive
        self.max_batch = max_batch
        self.newest_first = newest_first
        self.step = step
        self.auth_shape = auth_shape
        self.sync_after_auth_failed = sync_after_auth_failed
        self.id_at_plan = id_at_plan
        self.channels = channels
        self.extra_per_channel = extra_per_channel
        self.lock = threading.Lock()
        self.connections: dict[str, str] = {}  # id -> outcome
        self.queues: dict[str, list[dict[str, Any]]] = {}  # visible events
        self.sent: dict[str, list[dict[str, Any]]] = {}  # every event that reached a queue
        self.planned: list[tuple[float, int | None, dict[str, Any], tuple[str, ...]]] = []
        self.next_id = 1
        self.next_queue = 1
        self.busy_until: dict[str, float] = {}
        self.faults: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, str, bytes]] = []
        self.app = Starlette(
            routes=[
                Route("/v2.1/queues", self.subscribe, methods=["POST"]),
                Route("/v2.1/queues/{queue_id}", self.read_queue, methods=["GET"]),
                Route("/v2.1/connections/synchronize", self.sync_all, methods=["POST"]),
                Route("/v2.1/connections/{cid}/synchronize", self.sync_one, methods=["POST"]),
            ]
        )

    # -- set-up ----------------------------------------------------------------

    def add(self, cid: str, outcome: str = "SUCCESS") -> str:
        self.connections[cid] = outcome
        return cid

    def fault(self, route: str, *actions: str) -> None:
        self.faults.setdefault(route, []).extend(actions)

    def new_queue(self) -> str:
        with self.lock:
            qid = f"q{self.next_queue}"
            self.next_queue += 1
            self.queues[qid] = []
            self.sent[qid] = []
            return qid

    # -- events ------------------------------------------------------------------

    def _connection(self, cid: str, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": cid,
            "provider_id": "200",
            "name": f"WBX Test Bank {cid}",
            "channels": [
                {"channel_definition_id": f"87{i:02d}", "status": "SUCCESS", "last_success_date": T0 + 10,
                 "last_end_date": T0 + 10, "expires": T0 + 99999}
                for i in range(self.channels)
            ],
            "status": status,
            "creation_date": 0,
            **extra,
        }

    def _channel_event(self, kind: str, cid: str, i: int, status: str) -> tuple[str, dict[str, Any]]:
        channel = {"id": f"ch-{cid}-{i}", "channel_definition_id": f"87{i:02d}", "status": status,
                   "last_end_date": T0 + 5}
        shape = self.auth_shape
        if shape == "connection":  # the resource is the connection itself
            return "CONNECTION", self._connection(cid, "FAILED" if status != "SUCCESS" else "RUNNING")
        if shape == "connection_id":
            channel["connection_id"] = cid
        elif shape == "link":
            channel["connection"] = f"/connections/{cid}"
        elif shape == "hal":
            channel["_links"] = {"connection": {"href": f"/connections/{cid}"}}
        elif shape == "lowercase":
            return "channel", channel
        return "CHANNEL", channel

    def _plan(self, cid: str, sync_type: str) -> list[dict[str, Any]]:
        outcome = self.connections[cid]
        out: list[dict[str, Any]] = []

        def event(event_type: str, resource_type: str, resource: dict[str, Any]) -> None:
            # many events share one creation date (ties), and extra fields ride along
            out.append({"event_type": event_type, "resource_type": resource_type,
                        "creation_date": T0 + len(out) // 3, "resource": resource, "x_trace": f"t{len(out)}"})

        event("SYNC_STARTED", "CONNECTION", self._connection(cid, "RUNNING"))
        if sync_type == "LIST_ACCOUNTS":
            for i in range(self.channels):
                accounts = [{"id": f"acc-{cid}-{i}-{k}", "name": f"Account {k}", "type": "CHECKINGS",
                             "currency": "EUR"} for k in range(2)]
                event("LIST_ACCOUNTS_SUCCESS", "CONNECTION", self._connection(cid, "RUNNING", accounts=accounts))
        for i in range(self.channels):
            if outcome == "AUTH_FAILED" and i == self.channels - 1:
                event("AUTH_FAILED", *self._channel_event("AUTH_FAILED", cid, i, "TOKEN_EXPIRED"))
                if not self.sync_after_auth_failed:
                    return out
                continue
            event("AUTH_SUCCESS", *self._channel_event("AUTH_SUCCESS", cid, i, "SUCCESS"))
            for k in range(self.extra_per_channel):
                event("ACCOUNT_SYNC_ENDED", "CONNECTION", self._connection(cid, "RUNNING", account_index=k))
        final = "FAILED" if outcome == "AUTH_FAILED" else outcome
        event("SYNC_ALL_SUCCESS", "CONNECTION", self._connection(cid, final))
        return out

    def start_sync(self, cid: str, sync_type: str) -> None:
        now = time.monotonic()
        events = self._plan(cid, sync_type)
        with self.lock:
            targets = tuple(self.queues)  # only queues subscribed before the sync
            for k, ev in enumerate(events):
                number = None
                if self.id_at_plan:
                    number = self.next_id
                    self.next_id += 1
                self.planned.append((now + (k + 1) * self.step, number, ev, targets))
            self.busy_until[cid] = now + (len(events) + 1) * self.step

    def _release(self) -> None:
        now = time.monotonic()
        due = sorted((p for p in self.planned if p[0] <= now), key=lambda p: p[0])
        self.planned = [p for p in self.planned if p[0] > now]
        for _, number, ev, targets in due:
            if number is None:
                number = self.next_id
                self.next_id += 1
            record = {"id": str(number), **ev}
            for qid in targets:
                if qid in self.queues:
                    self.queues[qid].append(record)
                    self.sent[qid].append(record)

    def drain(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                self._release()
                if not self.planned:
                    return
            if time.monotonic() > deadline:
                raise AssertionError("the emulator's syncs did not finish")
            time.sleep(0.01)

    # -- HTTP ------------------------------------------------------------------------

    async def _gate(self, request: Request, route: str) -> Response | None:
        body = await request.body()
        self.requests.append((request.method, request.url.path, request.url.query, body))
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        actions = self.faults.get(route)
        action = actions.pop(0) if actions else None
        if action in ("500", "502", "503"):
            return JSONResponse({"error": "unavailable"}, status_code=int(action))
        if action == "429":
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "1"})
        if action == "429date":
            when = email.utils.format_datetime(datetime.now(timezone.utc), usegmt=True)
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": when})
        if action == "html":
            return Response("<html><body>Bad gateway</body></html>", status_code=200, media_type="text/html")
        if action == "truncate":
            return Response('[{"id": "1", "event_ty', status_code=200, media_type="application/json")
        if action == "reset":
            return _Reset()
        if action == "slow":
            import anyio

            await anyio.sleep(0.5)
        return None

    async def subscribe(self, request: Request) -> Response:
        if (early := await self._gate(request, "subscribe")) is not None:
            return early
        return JSONResponse({"id": self.new_queue()}, status_code=201)

    async def read_queue(self, request: Request) -> Response:
        if (early := await self._gate(request, "read")) is not None:
            return early
        qid = request.path_params["queue_id"]
        with self.lock:
            self._release()
            if qid not in self.queues:
                return JSONResponse({"error": "no such queue"}, status_code=404)
            events = list(self.queues[qid])
            if self.destructive:
                if self.max_batch is not None:
                    events = events[: self.max_batch]  # the oldest first, as a queue does
                del self.queues[qid][: len(events)]
            elif self.max_batch is not None:
                events = events[-self.max_batch :]  # a queue that keeps its events shows the newest ones
        if self.newest_first:
            events.reverse()
        return JSONResponse(events)

    async def sync_one(self, request: Request) -> Response:
        if (early := await self._gate(request, "sync_one")) is not None:
            return early
        cid = request.path_params["cid"]
        if cid not in self.connections:
            return JSONResponse({"error": "no such connection"}, status_code=404)
        if self.busy_until.get(cid, 0) > time.monotonic():
            return JSONResponse({"error": "a synchronisation is running"}, status_code=409)
        sync_type = request.query_params.get("type")
        body = await request.body()
        if body:
            sync_type = json.loads(body).get("type", sync_type)
        self.start_sync(cid, sync_type or "ALL")
        after = self.faults.get("sync_one_after")
        if after:
            after.pop(0)
            return JSONResponse({"error": "gateway timeout"}, status_code=502)  # started, but the answer is lost
        return Response(status_code=204)

    async def sync_all(self, request: Request) -> Response:
        if (early := await self._gate(request, "sync_all")) is not None:
            return early
        for cid in self.connections:
            self.start_sync(cid, "ALL")
        return JSONResponse({"connection_links": [f"/connections/{cid}" for cid in self.connections]})


class _Reset(Response):
    """Starts a response, sends part of the body, then drops the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4000")]})
        await send({"type": "http.response.body", "body": b'[{"id": "1"', "more_body": True})
        raise ConnectionResetError("dropped")


@pytest.fixture
def server() -> Iterator[Any]:
    made: list[tuple[QueueServer, Any]] = []

    def make(**options: Any) -> tuple[QueueServer, str]:
        emu = QueueServer(**options)
        context = serve_asgi(emu.app, name="bank-sync-blackbox")
        url = context.__enter__()
        made.append((emu, context))
        return emu, url + "/v2.1"

    yield make
    for _, context in made:
        context.__exit__(None, None, None)


def follow(
    base_url: str, cwd: Path, *params: str, token: str | None = TOKEN, name: str = "bb", timeout: float = 20,
    extra: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    args = [TIDINGS, "follow", "bank-sync", "--base-url", base_url, "--checkpoint", "cp.sqlite3", "--name", name,
            "--interval", "0.05", "--quiet", *extra]
    for p in params:
        args += ["--param", p]
    env = {k: v for k, v in os.environ.items() if k != "TIDINGS_TOKEN"}
    if token is not None:
        env["TIDINGS_TOKEN"] = token
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def check_envelope(event: dict[str, Any], sent: dict[str, dict[str, Any]]) -> None:
    raw = event["raw"]
    assert event["provider"] == "bank-sync"
    assert raw == sent[event["id"]], "raw must be the record exactly as the server sent it"
    assert event["id"] == raw["id"]
    assert event["type"] == raw["event_type"]
    assert event["status"] == raw["resource"].get("status")
    assert event["occurred_at"] == utc(raw["creation_date"])
    assert event["occurred_at"].endswith(("Z", "+00:00"))
    terminal = raw["event_type"] in ("SYNC_ALL_SUCCESS", "AUTH_FAILED")
    assert event["terminal"] is terminal


def sent_by_id(emu: QueueServer) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for records in emu.sent.values() for r in records}


def expected_until_end(emu: QueueServer, qid: str, cids: set[str]) -> list[str]:
    """The ids the watch must deliver: the queue's events in id order up to the last connection's end."""
    open_ = set(cids)
    ids = []
    for record in sorted(emu.sent[qid], key=lambda r: int(r["id"])):
        ids.append(record["id"])
        cid = subject_of(record)
        if record["event_type"] in ("SYNC_ALL_SUCCESS", "AUTH_FAILED"):
            open_.discard(cid)
            if not open_:
                break
    return ids


def subject_of(record: dict[str, Any]) -> str:
    resource = record["resource"]
    if "connection_id" in resource:
        return str(resource["connection_id"])
    if isinstance(resource.get("connection"), str):
        return resource["connection"].rsplit("/", 1)[-1]
    if "_links" in resource:
        return resource["_links"]["connection"]["href"].rsplit("/", 1)[-1]
    return str(resource["id"])


# -- the tests ---------------------------------------------------------------------------


MODES = {
    "keeps": {},
    "destructive": {"destructive": True},
    "destructive-batched-newest-first": {"destructive": True, "max_batch": 3, "newest_first": True},
    "keeps-capped-newest-first": {"newest_first": True, "max_batch": 4, "step": 0.1},
}


def test_one_connection_every_event_once_in_id_order(server: Any, tmp_path: Path) -> None:
    emus, runs = [], []
    for mode, options in MODES.items():
        emu, url = server(extra_per_channel=3, **options)
        emu.add("1234")
        emus.append(emu)
        runs.append((url, tmp_path / mode, ("connection_id=1234",)))
    for mode, emu, (code, out, err) in zip(MODES, emus, follow_many(runs), strict=True):
        assert code == 0, (mode, err)
        events = lines(out)
        ids = [e["id"] for e in events]
        assert ids == expected_until_end(emu, "q1", {"1234"}), mode
        assert len(ids) >= 10 and "9" in ids and "10" in ids  # crosses from one digit to two
        sent = sent_by_id(emu)
        for e in events:
            check_envelope(e, sent)
            assert e["subject"] == "1234"
        last = events[-1]
        assert last["type"] == "SYNC_ALL_SUCCESS" and last["terminal"] and last["status"] == "SUCCESS"
        assert [e for e in events if e["terminal"]] == [last]
        # the queue was subscribed before the sync was triggered
        posts = [(m, p) for m, p, _, _ in emu.requests if m == "POST"]
        assert posts == [("POST", "/v2.1/queues"), ("POST", "/v2.1/connections/1234/synchronize")]


def test_list_accounts_chains_into_all(server: Any, tmp_path: Path) -> None:
    emu, url = server()
    emu.add("55")
    done = follow(url, tmp_path, "connection_id=55", "type=LIST_ACCOUNTS")
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    types = [e["type"] for e in events]
    assert types.count("LIST_ACCOUNTS_SUCCESS") == 2
    assert types[-1] == "SYNC_ALL_SUCCESS"
    assert not any(e["terminal"] for e in events if e["type"] == "LIST_ACCOUNTS_SUCCESS")
    assert [e["id"] for e in events] == expected_until_end(emu, "q1", {"55"})
    trigger = [(q, b) for m, p, q, b in emu.requests if p.endswith("/55/synchronize")]
    assert len(trigger) == 1
    query, body = trigger[0]
    assert "type=LIST_ACCOUNTS" in query or json.loads(body or b"{}").get("type") == "LIST_ACCOUNTS"


@pytest.mark.parametrize("destructive", [False, True])
def test_all_connections_end_each(server: Any, tmp_path: Path, destructive: bool) -> None:
    emu, url = server(destructive=destructive, max_batch=5 if destructive else None)
    for cid, outcome in (("1", "SUCCESS"), ("2", "FAILED"), ("3", "PARTIAL_SUCCESS")):
        emu.add(cid, outcome)
    done = follow(url, tmp_path, "connection_id=all")
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    ends = {e["subject"]: e["status"] for e in events if e["terminal"]}
    assert ends == {"1": "SUCCESS", "2": "FAILED", "3": "PARTIAL_SUCCESS"}
    ids = [e["id"] for e in events]
    assert ids == expected_until_end(emu, "q1", {"1", "2", "3"})
    sent = sent_by_id(emu)
    for e in events:
        check_envelope(e, sent)


def follow_many(runs: list[tuple[str, Path, tuple[str, ...]]], timeout: float = 20) -> list[tuple[int, str, str]]:
    """Several ``tidings follow`` at once (each against its own emulator): (exit code, stdout, stderr)."""
    env = {**os.environ, "TIDINGS_TOKEN": TOKEN}
    procs = []
    for url, cwd, params in runs:
        cwd.mkdir(exist_ok=True)
        args = [TIDINGS, "follow", "bank-sync", "--base-url", url, "--checkpoint", "cp.sqlite3", "--name", "bb",
                "--interval", "0.05", "--quiet"]
        for p in params:
            args += ["--param", p]
        procs.append(subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        results.append((proc.returncode, out, err))
    return results


SHAPES = ["channel", "connection_id", "link", "hal", "lowercase", "connection"]


def test_auth_failed_ends_a_single_connection_watch(server: Any, tmp_path: Path) -> None:
    runs = []
    for shape in SHAPES:
        emu, url = server(auth_shape=shape, sync_after_auth_failed=False)
        emu.add("901", "AUTH_FAILED")
        runs.append((url, tmp_path / shape, ("connection_id=901",)))
    for shape, (code, out, err) in zip(SHAPES, follow_many(runs), strict=True):
        assert code == 0, (shape, err)
        last = lines(out)[-1]
        assert last["type"] == "AUTH_FAILED" and last["terminal"] and last["subject"] == "901", shape
        assert last["status"] == ("FAILED" if shape == "connection" else "TOKEN_EXPIRED")


def test_auth_failed_ends_its_connection_among_many(server: Any, tmp_path: Path) -> None:
    shapes = ["connection_id", "link", "hal", "connection"]
    runs = []
    for shape in shapes:
        emu, url = server(auth_shape=shape, sync_after_auth_failed=False)
        emu.add("1", "SUCCESS")
        emu.add("2", "AUTH_FAILED")
        runs.append((url, tmp_path / shape, ("connection_id=all",)))
    for shape, (code, out, err) in zip(shapes, follow_many(runs), strict=True):
        assert code == 0, (shape, err)
        ends = {e["subject"]: e["type"] for e in lines(out) if e["terminal"]}
        assert ends == {"1": "SYNC_ALL_SUCCESS", "2": "AUTH_FAILED"}, shape


def test_auth_failed_naming_no_connection_among_many_ends_at_sync_all_success(server: Any, tmp_path: Path) -> None:
    emu, url = server(auth_shape="channel", sync_after_auth_failed=True)
    emu.add("1", "SUCCESS")
    emu.add("2", "AUTH_FAILED")
    done = follow(url, tmp_path, "connection_id=all")
    assert done.returncode == 0, done.stderr
    ends = {e["subject"]: e["status"] for e in lines(done.stdout) if e["terminal"] and e["type"] == "SYNC_ALL_SUCCESS"}
    assert ends == {"1": "SUCCESS", "2": "FAILED"}


def test_queue_id_waits_for_named_connections_without_triggering(server: Any, tmp_path: Path) -> None:
    emu, url = server(id_at_plan=True)  # two syncs at once: ids interleave, some land late
    emu.add("10")
    emu.add("20")
    qid = emu.new_queue()
    emu.start_sync("10", "ALL")
    emu.start_sync("20", "ALL")
    done = follow(url, tmp_path, f"queue_id={qid}", "connection_id=10", "connection_id=20")
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert not any(m == "POST" for m, *_ in emu.requests)
    assert {e["subject"] for e in events if e["terminal"]} == {"10", "20"}
    assert sorted(int(e["id"]) for e in events) == sorted(int(r["id"]) for r in emu.sent[qid])
    assert len({e["id"] for e in events}) == len(events)


@pytest.mark.parametrize("destructive", [False, True])
def test_faults_lose_and_repeat_nothing(server: Any, tmp_path: Path, destructive: bool) -> None:
    emu, url = server(destructive=destructive, max_batch=4 if destructive else None, step=0.03)
    emu.add("5")
    emu.fault("subscribe", "503", "429")
    emu.fault("sync_one", "500")
    for action in ("500", "502", "truncate", "429date", "reset", "html", "slow", "503", "429"):
        emu.fault("read", action, "ok")  # one fault at a time: the engine's backoff grows with faults in a row
    done = follow(url, tmp_path, "connection_id=5", timeout=30)
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert [e["id"] for e in events] == expected_until_end(emu, "q1", {"5"})
    assert len(emu.queues) == 1  # one queue subscribed, despite the retries


def test_a_trigger_answer_lost_after_the_sync_started(server: Any, tmp_path: Path) -> None:
    emu, url = server(step=0.05)
    emu.add("6")
    emu.fault("sync_one_after", "lost")
    done = follow(url, tmp_path, "connection_id=6")
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert events[-1]["type"] == "SYNC_ALL_SUCCESS" and events[-1]["subject"] == "6"
    assert len({e["id"] for e in events}) == len(events)


@pytest.mark.parametrize("destructive", [False, True])
def test_interrupt_then_resume_loses_and_repeats_nothing(server: Any, tmp_path: Path, destructive: bool) -> None:
    emu, url = server(destructive=destructive, step=0.12, extra_per_channel=3)
    emu.add("42")
    args = [TIDINGS, "follow", "bank-sync", "--base-url", url, "--checkpoint", "cp.sqlite3", "--name", "bb",
            "--interval", "0.05", "--quiet", "--param", "connection_id=42"]
    env = {**os.environ, "TIDINGS_TOKEN": TOKEN}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    before = lines("".join(first) + rest)
    assert not any(e["terminal"] for e in before)
    done = follow(url, tmp_path, "connection_id=42")
    assert done.returncode == 0, done.stderr
    after = lines(done.stdout)
    ids = [e["id"] for e in before + after]
    assert ids == expected_until_end(emu, "q1", {"42"})
    assert sum(1 for m, p, *_ in emu.requests if p.endswith("/synchronize")) == 1  # resuming does not re-trigger


def test_a_second_run_after_the_end_resumes_an_ended_watch_and_a_new_name_follows_a_new_sync(
    server: Any, tmp_path: Path
) -> None:
    emu, url = server()
    emu.add("3")
    first = follow(url, tmp_path, "connection_id=3")
    assert first.returncode == 0, first.stderr
    again = follow(url, tmp_path, "connection_id=3")  # same watch: it ended, nothing more, no new sync
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    fresh = follow(url, tmp_path, "connection_id=3", name="bb-2")  # new work under a new name
    assert fresh.returncode == 0, fresh.stderr
    one, two = lines(first.stdout), lines(fresh.stdout)
    assert not {e["id"] for e in one} & {e["id"] for e in two}
    assert two[-1]["type"] == "SYNC_ALL_SUCCESS" and two[-1]["terminal"]


def test_wrong_token_is_one_clear_line(server: Any, tmp_path: Path) -> None:
    emu, url = server()
    emu.add("1")
    done = follow(url, tmp_path, "connection_id=1", token="wrong-token-secret-xyz")
    assert done.returncode != 0
    assert done.stdout == ""
    err = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(err) == 1, done.stderr
    assert "wrong-token-secret-xyz" not in done.stderr and "Traceback" not in done.stderr


def test_token_on_the_command_line_is_not_shown_on_error(server: Any, tmp_path: Path) -> None:
    _, url = server()
    done = follow(url, tmp_path, "connection_id=404", extra=("--token", TOKEN), token=None)
    assert done.returncode != 0
    assert TOKEN not in done.stderr and "Traceback" not in done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


@pytest.mark.parametrize("destructive", [False, True])
def test_late_events_far_below_the_newest_id_are_not_lost(server: Any, tmp_path: Path, destructive: bool) -> None:
    # ids are given when each sync is planned, connection after connection, but the
    # syncs run side by side: connection 1's later events land long after ids 40+ were seen
    emu, url = server(id_at_plan=True, destructive=destructive, extra_per_channel=5, step=0.03)
    for cid in ("1", "2", "3", "4"):
        emu.add(cid)
    done = follow(url, tmp_path, "connection_id=all")
    assert done.returncode == 0, done.stderr
    events = lines(done.stdout)
    assert {e["subject"] for e in events if e["terminal"]} == {"1", "2", "3", "4"}
    got = sorted(int(e["id"]) for e in events)
    assert got == sorted(int(r["id"]) for r in emu.sent["q1"])

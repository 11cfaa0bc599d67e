"""Black-box tests: the real ``tidings follow request-status`` against an independent emulator.

The emulator below is written from /work/shared/PROVIDERS.md and the seed only
(not from the plugin's own emulator): ``GET api/v3/global/call/{id}?page=N&size=M``
with 0-based pages and a page size of the server's choosing, inner requests that
are ``OPEN`` and turn final after a few reads, ``GLOBAL_1001`` inside a 200 or
with a 503, ``GLOBAL_1003`` inside a 200 or with a 404 (``content: ""``,
``pageable: null``), 5xx, 429 with ``Retry-After`` in seconds or as an HTTP date,
truncated bodies, connection resets, slow answers, extra unknown fields, bearer
or API-key auth. The command runs as a subprocess on a real loopback port.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tidings._serve import serve_asgi

TIDINGS = str(Path(sys.executable).with_name("tidings"))
TOKEN = "s3cret-token-value-42"
FINAL = ("SUCCESS", "FAILURE", "INTERNAL_ERROR")


class Inner:
    def __init__(self, request_id: str, final: str, open_reads: int) -> None:
        self.request_id = request_id
        self.final = final
        self.open_reads = open_reads  # full reads (of page 0) answered OPEN before it turns final
        self.held = False  # OPEN whatever the reads, while held

    def status(self, reads: int) -> str:
        return "OPEN" if self.held or reads <= self.open_reads else self.final


class Server:
    """An independent emulator of Get Request Status V3.

    :param max_size: the largest page the server serves (it caps ``size`` silently).
    :param fixed_size: a page size the server uses whatever ``size`` says.
    :param order: ``stable``, ``reversed`` or ``shuffled`` (items move between pages on every read).
    :param api_key: expect the token in ``X-API-Key`` instead of ``Authorization: Bearer``.
    :param unknown_status: 200 or 404 for ``GLOBAL_1003``.
    :param extra: add unknown fields to the body and the items.
    :param stale: answer OPEN once after an inner request was served final (a stale replica).
    """

    def __init__(
        self,
        *,
        max_size: int = 1000,
        fixed_size: int | None = None,
        order: str = "stable",
        api_key: bool = False,
        unknown_status: int = 200,
        extra: bool = False,
        stale: bool = False,
        prefix: str = "",
        null_success_code: bool = False,
    ) -> None:
        self.calls: dict[str, list[Inner]] = {}
        self.empty_reads: dict[str, int] = {}  # reads answered with no inner request yet (not registered)
        self.reads: Counter[str] = Counter()
        self.max_size = max_size
        self.fixed_size = fixed_size
        self.order = order
        self.api_key = api_key
        self.unknown_status = unknown_status
        self.extra = extra
        self.stale = stale
        self.stale_done: set[str] = set()
        self.null_success_code = null_success_code
        self.faults: dict[str, list[str]] = {}  # id -> faults for its next requests, in order
        self.log: list[tuple[float, str, str, int, str]] = []  # (time, id, query, status, fault)
        self.sent: dict[tuple[str, int], Any] = {}  # what each inner request's final/open item looked like
        self.rng = random.Random(7)
        self.lock = threading.Lock()
        self.prefix = prefix
        self.starlette = Starlette(routes=[Route(f"{prefix}/api/v3/global/call/{{id}}", self.status, methods=["GET"])])

    @property
    def app(self) -> Any:
        return _ASGI(self)

    async def asgi(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI app: a connection reset mid-body is done here, below Starlette."""
        if scope["type"] == "http":
            request_id = scope["path"].rsplit("/", 1)[-1]
            with self.lock:
                queue = self.faults.get(request_id) or []
                reset = bool(queue) and queue[0] == "reset"
                if reset:
                    queue.pop(0)
            if reset:
                self.log.append((time.monotonic(), request_id, scope["query_string"].decode(), 200, "reset"))
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", b"400")]})
                await send({"type": "http.response.body", "body": b'{"errorCode": "", "content": [', "more_body": True})
                raise RuntimeError("emulated reset")
        await self.starlette(scope, receive, send)

    def add_call(self, n: int, *, request_id: str | None = None, same_id: bool = False) -> str:
        call_id = request_id or str(uuid.uuid4())
        inners = []
        for i in range(n):
            inner_id = call_id if same_id and i == 0 else str(uuid.uuid4())
            inners.append(Inner(inner_id, self.rng.choice(FINAL), self.rng.randint(0, 3)))
        self.calls[call_id] = inners
        return call_id

    def fault(self, request_id: str, *kinds: str) -> None:
        self.faults.setdefault(request_id, []).extend(kinds)

    def items_sent(self) -> list[Any]:
        return list(self.sent.values())

    def _authorised(self, request: Request) -> bool:
        if self.api_key:
            return request.headers.get("x-api-key") == TOKEN
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def status(self, request: Request) -> Response:
        request_id = request.path_params["id"]
        query = str(request.url.query)
        if not self._authorised(request):
            self.log.append((time.monotonic(), request_id, query, 401, ""))
            return JSONResponse({"errorCode": "GLOBAL_0401", "errorMessage": "Unauthorized"}, status_code=401)
        with self.lock:
            queue = self.faults.get(request_id) or []
            fault = queue.pop(0) if queue else ""
        response = await self._fault(fault)
        if response is not None:
            self.log.append((time.monotonic(), request_id, query, response.status_code, fault))
            return response
        response = self._answer(request_id, request)
        self.log.append((time.monotonic(), request_id, query, response.status_code, ""))
        return response

    async def _fault(self, fault: str) -> Response | None:
        if not fault:
            return None
        if fault == "1001-200":
            return JSONResponse({"errorCode": "GLOBAL_1001", "errorMessage": "Service unavailable. Please try again",
                                 "content": "", "pageable": None})
        if fault == "1001-503-date":
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return JSONResponse({"errorCode": "GLOBAL_1001", "errorMessage": "Service unavailable. Please try again",
                                 "content": "", "pageable": None}, status_code=503, headers={"Retry-After": when})
        if fault == "1001-503":
            return JSONResponse({"errorCode": "GLOBAL_1001", "errorMessage": "Service unavailable. Please try again",
                                 "content": "", "pageable": None}, status_code=503, headers={"Retry-After": "1"})
        if fault in ("500", "502", "503"):
            return Response("<html>oops</html>", status_code=int(fault), media_type="text/html")
        if fault == "429":
            return JSONResponse({"message": "slow down"}, status_code=429, headers={"Retry-After": "1"})
        if fault == "429-date":
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return JSONResponse({"message": "slow down"}, status_code=429, headers={"Retry-After": when})
        if fault == "truncated":
            return Response(b'{"errorCode": "", "errorMessage": "", "content": [{"requestId": "x', status_code=200,
                            media_type="application/json")
        if fault == "slow":
            await anyio.sleep(0.4)
            return None
        raise AssertionError(fault)

    def _answer(self, request_id: str, request: Request) -> Response:
        inners = self.calls.get(request_id)
        if inners is None:
            return JSONResponse(
                {"errorCode": "GLOBAL_1003", "errorMessage": "Provided request ID does not exist for your account",
                 "content": "", "pageable": None},
                status_code=self.unknown_status,
            )
        page = int(request.query_params.get("page", "0"))
        asked = int(request.query_params.get("size", "10"))
        size = self.fixed_size or max(1, min(asked, self.max_size))
        if page == 0:
            self.reads[request_id] += 1
        reads = self.reads[request_id]
        ordered = list(inners)
        if self.order == "reversed":
            ordered.reverse()
        elif self.order == "shuffled":
            self.rng.shuffle(ordered)
        if reads <= self.empty_reads.get(request_id, 0):
            ordered = []
        chunk = ordered[page * size : (page + 1) * size]
        content = []
        for inner in chunk:
            status = inner.status(reads)
            if self.stale and status != "OPEN" and inner.request_id not in self.stale_done and (inner.request_id,
                                                                                               status) in self.sent:
                self.stale_done.add(inner.request_id)
                status = "OPEN"  # a stale replica, once, after the final status was served
                item = {"requestId": inner.request_id, "status": status}
                content.append(item)
                continue
            item: dict[str, Any] = {"requestId": inner.request_id, "status": status}
            if self.extra:
                item["node"] = {"attempt": reads, "region": "eu"}
            self.sent.setdefault((inner.request_id, status), item)
            content.append(item)
        total = len(ordered)
        body: dict[str, Any] = {
            "errorCode": None if self.null_success_code else "",
            "errorMessage": None if self.null_success_code else "",
            "content": content,
            "pageable": {"page": page, "size": size, "totalPages": -(-total // size), "totalElements": total},
        }
        if self.extra:
            body["traceId"] = str(uuid.uuid4())
            body["pageable"]["sort"] = {"sorted": False}
        return JSONResponse(body)


class _ASGI:
    """An ASGI 3 callable (uvicorn reads a bound method as ASGI 2)."""

    def __init__(self, server: Server) -> None:
        self.server = server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.server.asgi(scope, receive, send)


def expected(server: Server, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Event id -> the item as served, for every status of every followed inner request."""
    out = {}
    for request_id in ids:
        for inner in server.calls[request_id]:
            for (rid, status), item in server.sent.items():
                if rid == inner.request_id:
                    out[f"{rid}:{status}"] = item
    return out


def follow(
    tmp: Path, base: str, *args: str, env_token: bool = False, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    cmd = [TIDINGS, "follow", "request-status", "--base-url", base, "--interval", "0.05", "--quiet", *args]
    env = {**os.environ}
    env.pop("TIDINGS_TOKEN", None)
    if env_token:
        env["TIDINGS_TOKEN"] = TOKEN
    elif "--token" not in args:
        cmd += ["--token", TOKEN]
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout, env=env)


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def check_envelope(event: dict[str, Any]) -> None:
    for key in ("provider", "id", "subject", "type", "status", "occurred_at", "terminal", "raw"):
        assert key in event, key
    assert event["provider"] == "request-status"
    assert event["occurred_at"].endswith(("Z", "+00:00"))
    raw = event["raw"]
    if "requestId" in raw:
        assert event["subject"] == raw["requestId"]
        assert event["status"] == raw["status"]
        assert event["id"] == f"{raw['requestId']}:{raw['status']}"
        assert event["type"] == f"request.{raw['status'].lower()}"
        assert event["terminal"] is (raw["status"] in FINAL)


def check_run(server: Server, ids: list[str], events: list[dict[str, Any]], *, every_open: bool = True) -> None:
    """Every status served is delivered exactly once, OPEN before final, raw as served.

    With ``every_open=False`` an OPEN the server served may be missing: a run stopped
    after reading it but before delivering it, and the status was final by the next read.
    """
    for event in events:
        check_envelope(event)
    counts = Counter(e["id"] for e in events)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    want = expected(server, ids)
    got = {e["id"]: e["raw"] for e in events}
    if every_open:
        assert got == want
    else:
        assert got.items() <= want.items()
        assert {k for k in want if not k.endswith(":OPEN")} <= got.keys()
    for request_id in ids:
        for inner in server.calls[request_id]:
            mine = [e["status"] for e in events if e["subject"] == inner.request_id]
            assert mine[-1] == inner.final
            assert mine in (["OPEN", inner.final], [inner.final])


# -- the tests --------------------------------------------------------------------------------


def test_many_ids_capped_pages_trailing_slash(tmp_path: Path) -> None:
    server = Server(max_size=3, extra=True)
    ids = [server.add_call(n) for n in (7, 1, 4, 10)]
    with serve_asgi(server.app) as base:
        args = [a for i in ids for a in ("--param", f"request_id={i}")]
        run = follow(tmp_path, base + "/", *args)
    assert run.returncode == 0, run.stderr
    events = lines(run.stdout)
    check_run(server, ids, events)
    # pages were 0-based and the server's cap of 3 was followed up to the last page
    assert any(q.startswith("page=3") for _, i, q, _, _ in server.log if i == ids[3])
    assert not any(q.startswith("page=4") for _, i, q, _, _ in server.log if i == ids[3])


def test_server_ignores_size_reorders_items_and_sends_null_codes(tmp_path: Path) -> None:
    for order in ("reversed", "shuffled"):
        server = Server(fixed_size=2, order=order, null_success_code=True, prefix="/iot")
        ids = [server.add_call(n) for n in (5, 6)]
        with serve_asgi(server.app) as base:
            args = [a for i in ids for a in ("--param", f"request_id={i}")]
            run = follow(tmp_path, base + "/iot", *args, "--param", "page_size=50", "--name", order)
        assert run.returncode == 0, run.stderr
        check_run(server, ids, lines(run.stdout))


def test_regular_call_whose_inner_request_is_the_call_id(tmp_path: Path) -> None:
    server = Server()
    single = server.add_call(1, same_id=True)
    bulk = server.add_call(3, same_id=True)  # its first inner request shares the call's id
    with serve_asgi(server.app) as base:
        run = follow(tmp_path, base, "--param", f"request_id={single}", "--param", f"request_id={bulk}")
    assert run.returncode == 0, run.stderr
    check_run(server, [single, bulk], lines(run.stdout))


def test_error_codes_and_faults(tmp_path: Path) -> None:
    server = Server(max_size=2)
    ids = [server.add_call(n) for n in (3, 2, 4, 1)]
    for request_id in ids:
        for inner in server.calls[request_id]:
            inner.open_reads = max(inner.open_reads, 3)  # every queued fault is met before the id ends
    server.fault(ids[0], "1001-200", "", "500", "truncated")
    server.fault(ids[1], "", "1001-503", "502", "")
    server.fault(ids[2], "429", "", "reset", "503", "slow")
    server.fault(ids[3], "", "1001-503-date")
    server.fault(ids[0], "429-date")
    unknown_200 = str(uuid.uuid4())
    with serve_asgi(server.app) as base:
        args = [a for i in [*ids, unknown_200] for a in ("--param", f"request_id={i}")]
        run = follow(tmp_path, base, *args)
    assert run.returncode == 0, run.stderr
    events = lines(run.stdout)
    errors = [e for e in events if e["subject"] == unknown_200]
    assert [(e["id"], e["type"], e["status"], e["terminal"]) for e in errors] == [
        (f"{unknown_200}:GLOBAL_1003", "request.unknown", "GLOBAL_1003", True)
    ]
    assert errors[0]["raw"] == {"errorCode": "GLOBAL_1003",
                                "errorMessage": "Provided request ID does not exist for your account",
                                "content": "", "pageable": None}
    check_run(server, ids, [e for e in events if e["subject"] != unknown_200])
    # GLOBAL_1003 is never retried
    assert sum(1 for _, i, *_ in server.log if i == unknown_200) == 1
    # Retry-After (seconds and HTTP date) is honoured after GLOBAL_1001 with a 503 and after a 429
    for request_id, fault, floor in (
        (ids[1], "1001-503", 0.9), (ids[2], "429", 0.9), (ids[3], "1001-503-date", 0.9), (ids[0], "429-date", 0.9)
    ):
        log = [entry for entry in server.log if entry[1] == request_id]
        at = next(k for k, entry in enumerate(log) if entry[4] == fault)
        assert log[at + 1][0] - log[at][0] >= floor, (fault, log[at + 1][0] - log[at][0])
    assert not any(server.faults.values())


def test_global_1003_with_404_and_unknown_with_known(tmp_path: Path) -> None:
    server = Server(unknown_status=404)
    known = server.add_call(2)
    unknown = str(uuid.uuid4())
    with serve_asgi(server.app) as base:
        run = follow(tmp_path, base, "--param", f"request_id={unknown}", "--param", f"request_id={known}")
    assert run.returncode == 0, run.stderr
    events = lines(run.stdout)
    assert [(e["id"], e["type"], e["terminal"], e["raw"]["content"], e["raw"]["pageable"])
            for e in events if e["subject"] == unknown] == [
        (f"{unknown}:GLOBAL_1003", "request.unknown", True, "", None)
    ]
    check_run(server, [known], [e for e in events if e["subject"] != unknown])


def test_api_key_ids_file_and_env_token(tmp_path: Path) -> None:
    server = Server(api_key=True, max_size=4)
    ids = [server.add_call(n) for n in range(1, 31)]
    text = "\ufeff# ids to follow\r\n" + "\r\n".join(ids[:20]) + "\r\n\r\n" + "\n".join(ids[10:]) + "\n"
    (tmp_path / "ids.txt").write_text(text, encoding="utf-8")
    with serve_asgi(server.app) as base:
        run = follow(tmp_path, base, "--param", f"request_ids_file={tmp_path / 'ids.txt'}",
                     "--param", "auth_header=X-API-Key", env_token=True)
    assert run.returncode == 0, run.stderr
    check_run(server, ids, lines(run.stdout))


def test_wrong_token_is_one_line_without_the_secret(tmp_path: Path) -> None:
    for api_key in (False, True):
        server = Server(api_key=api_key)
        request_id = server.add_call(2)
        bad = "wrong-token-value-77"
        extra = ["--param", "auth_header=X-API-Key"] if api_key else []
        with serve_asgi(server.app) as base:
            run = follow(tmp_path, base, "--token", bad, "--param", f"request_id={request_id}", *extra)
        assert run.returncode != 0
        assert run.stdout == ""
        err = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(err) == 1, run.stderr
        assert bad not in run.stderr and "Traceback" not in run.stderr


def test_wrong_path_stops_with_an_error(tmp_path: Path) -> None:
    server = Server()
    request_id = server.add_call(2)
    with serve_asgi(server.app) as base:
        run = follow(tmp_path, base + "/nope", "--param", f"request_id={request_id}")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and TOKEN not in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.strip()]) == 1, run.stderr


def test_stale_replica_does_not_repeat_or_undo_a_final_status(tmp_path: Path) -> None:
    server = Server(stale=True, max_size=2)
    ids = [server.add_call(n) for n in (4, 3)]
    with serve_asgi(server.app) as base:
        args = [a for i in ids for a in ("--param", f"request_id={i}")]
        run = follow(tmp_path, base, *args)
    assert run.returncode == 0, run.stderr
    check_run(server, ids, lines(run.stdout))


def test_interrupt_then_resume_loses_nothing_repeats_nothing(tmp_path: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        server = Server(max_size=2)
        for inner_count in (5, 3, 6):
            server.add_call(inner_count)
        ids = list(server.calls)
        held = [inner for request_id in ids for inner in server.calls[request_id][1::2]]
        for inner in held:
            inner.held = True  # OPEN until the first run was interrupted
        args = [a for i in ids for a in ("--param", f"request_id={i}")]
        name = ["--name", signum.name, "--checkpoint", "cp.sqlite3"]
        with serve_asgi(server.app) as base:
            cmd = [TIDINGS, "follow", "request-status", "--base-url", base, "--token", TOKEN, "--interval", "0.05",
                   "--quiet", *name, *args]
            proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first: list[str] = []
            assert proc.stdout is not None
            while len(first) < 5:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() if proc.stderr else ""
                first.append(line)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=20)
            first += out.splitlines()
            assert proc.returncode == 0, err
            events = lines("\n".join(first))
            assert not all(e["terminal"] for e in events)  # it really stopped early
            for inner in held:
                inner.held = False
            second = follow(tmp_path, base, *name, *args)
        assert second.returncode == 0, second.stderr
        check_run(server, ids, events + lines(second.stdout), every_open=False)


def test_resume_after_the_end_delivers_only_what_is_new(tmp_path: Path) -> None:
    server = Server()
    request_id = server.add_call(2)
    with serve_asgi(server.app) as base:
        first = follow(tmp_path, base, "--param", f"request_id={request_id}")
        assert first.returncode == 0, first.stderr
        assert lines(first.stdout)
        again = follow(tmp_path, base, "--param", f"request_id={request_id}")
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout) == []


def test_a_call_not_registered_yet_is_not_ended_empty(tmp_path: Path) -> None:
    server = Server()
    ids = [server.add_call(n) for n in (1, 3)]
    for request_id in ids:
        server.empty_reads[request_id] = 2  # content [] and totalElements 0 at first
    with serve_asgi(server.app) as base:
        run = follow(tmp_path, base, "--param", f"request_id={ids[0]}", "--param", f"request_id={ids[1]}")
    assert run.returncode == 0, run.stderr
    check_run(server, ids, lines(run.stdout))

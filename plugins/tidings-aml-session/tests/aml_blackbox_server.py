"""An independent AML session server, written from PROVIDERS.md and the seed only.

It does not share code with the plugin or its emulator. Sessions progress by
wall clock: each result entity goes NOT_STARTED -> IN_PROGRESS -> READY (or
FAILED) and the session ends ALL_DONE or FAILED. Switches cover what a real
server may do: faults on POST and GET (5xx, 429 with Retry-After in seconds or
as an HTTP date, truncated bodies, connection resets, slow answers), extra
fields, entity names of its own, an entity failing while the session goes on,
and Standard Webhooks-signed notices sent on time, late, twice or never.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tidings._serve import serve_asgi

COUNTRIES = ("no", "se", "fi")


@dataclass
class Session:
    session_id: str
    identifier: str
    country: str
    created: float
    request: dict[str, Any]
    plan: dict[str, tuple[float, float, str]]  # entity -> (starts, ends, final state)
    end: float
    final: str  # ALL_DONE or FAILED
    webhook_url: str | None = None
    sent: set[str] = field(default_factory=set)


@dataclass
class BlackboxAml:
    token: str = "s3cret-token-xyz"
    entities: tuple[str, ...] = ("jsonData", "aml-report")
    step: float = 0.25  # seconds between entity changes
    fail_identifiers: tuple[str, ...] = ("999999999",)
    failed_entities: tuple[str, ...] = ()  # these end FAILED while the session goes on
    extra_fields: bool = False
    object_results: bool = False  # results as {"<entity>": {"status": ..., "href": ...}}
    post_faults: list[str] = field(default_factory=list)  # consumed one per POST
    get_faults: list[str] = field(default_factory=list)  # consumed one per status GET
    result_faults: list[str] = field(default_factory=list)  # consumed one per json/report GET
    webhook_mode: str = "ontime"  # ontime | late | twice | never
    webhook_secret: str | None = None
    webhook_delay: float = 0.6

    def __post_init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.posts: list[dict[str, Any]] = []
        self.bodies: list[Any] = []  # every status body sent, as JSON values
        self.webhook_answers: list[tuple[str, str, int]] = []  # (webhook-id, status, HTTP status)
        self.lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.app = Starlette(
            routes=[
                Route("/organization/session/{country}", self.create, methods=["POST"]),
                Route("/organization/session/{sid}", self.status, methods=["GET"]),
                Route("/organization/session/{sid}/json", self.json_result, methods=["GET"]),
                Route("/organization/session/{sid}/reports/{name}", self.report, methods=["GET"]),
            ]
        )

    # -- timeline ------------------------------------------------------------

    def new_session(self, identifier: str, country: str = "no", request: dict[str, Any] | None = None) -> Session:
        now = time.monotonic()
        failing = identifier in self.fail_identifiers
        plan: dict[str, tuple[float, float, str]] = {}
        t = now
        for i, name in enumerate(self.entities):
            start, t = t + self.step * 0.5, t + self.step
            state = "FAILED" if name in self.failed_entities else "READY"
            if failing and i == len(self.entities) - 1:
                state = "FAILED"
            plan[name] = (start, t, state)
        sid = str(uuid.uuid4())
        session = Session(sid, identifier, country, now, request or {}, plan, t + self.step * 0.5,
                          "FAILED" if failing else "ALL_DONE")
        hooks = (request or {}).get("webhooks")
        session.webhook_url = _webhook_url(hooks)
        with self.lock:
            self.sessions[sid] = session
        if session.webhook_url:
            thread = threading.Thread(target=self._send_webhooks, args=(session,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return session

    def view(self, session: Session, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        results: dict[str, str] = {}
        for name, (start, end, state) in session.plan.items():
            results[name] = "NOT_STARTED" if now < start else "IN_PROGRESS" if now < end else state
        if now >= session.end:
            status = session.final
        else:
            status = "IN_PROGRESS"
        shown: dict[str, Any] = dict(results)
        if self.object_results:
            shown = {k: {"status": v, "href": f"/x/{k}"} for k, v in results.items()}
        body: dict[str, Any] = {"sessionId": session.session_id, "status": status, "results": shown}
        if self.extra_fields:
            body = {"created": "2024-05-01T10:00:00Z", **body, "links": {"self": "/x"}, "version": 3}
        return body

    # -- faults --------------------------------------------------------------

    def _fault(self, queue: list[str]) -> str | None:
        with self.lock:
            return queue.pop(0) if queue else None

    async def _apply(self, fault: str | None, send_ok: Any) -> Response | None:
        if fault is None:
            return None
        if fault in ("500", "502", "503"):
            return JSONResponse({"error": "server trouble"}, status_code=int(fault))
        if fault == "409":
            return JSONResponse({"error": "not ready yet"}, status_code=409)
        if fault == "429":
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "1"})
        if fault == "429-date":
            when = email.utils.formatdate(time.time() + 1, usegmt=True)
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": when})
        if fault == "slow":
            import anyio

            await anyio.sleep(0.8)
            return None
        return None

    # -- endpoints -----------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    async def create(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        fault = self._fault(self.post_faults)
        country = request.path_params["country"]
        if country not in COUNTRIES:
            return JSONResponse({"error": "unknown country"}, status_code=404)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "bad json"}, status_code=400)
        if not isinstance(body, dict) or not body.get("identifier") or not body.get("nationality"):
            return JSONResponse({"error": "identifier and nationality are required"}, status_code=400)
        if fault in ("reset", "truncate"):
            # the session is created, but the answer never arrives whole
            self.posts.append(body)
            session = self.new_session(str(body["identifier"]), country, body)
            return _Broken(json.dumps({"sessionId": session.session_id}).encode(), reset=fault == "reset")
        answer = await self._apply(fault, None)
        if answer is not None:
            return answer
        self.posts.append(body)
        session = self.new_session(str(body["identifier"]), country, body)
        out: dict[str, Any] = {"sessionId": session.session_id}
        if self.extra_fields:
            out = {**out, "status": "IN_PROGRESS", "createdAt": "2024-05-01T10:00:00Z"}
        return JSONResponse(out, status_code=201)

    def _session(self, request: Request) -> Session | None:
        with self.lock:
            return self.sessions.get(request.path_params["sid"])

    async def status(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        fault = self._fault(self.get_faults)
        session = self._session(request)
        if session is None:
            return JSONResponse({"error": "no such session"}, status_code=404)
        if fault in ("reset", "truncate"):
            return _Broken(json.dumps(self.view(session)).encode(), reset=fault == "reset")
        answer = await self._apply(fault, None)
        if answer is not None:
            return answer
        body = self.view(session)
        text = json.dumps(body).encode()
        with self.lock:
            self.bodies.append(json.loads(text))
        return Response(text, media_type="application/json")

    def _ready(self, session: Session, name: str) -> bool:
        _, end, state = session.plan[name]
        return time.monotonic() >= end and state == "READY"

    async def json_result(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        session = self._session(request)
        if session is None:
            return JSONResponse({"error": "no such session"}, status_code=404)
        json_name = self.entities[0]
        if not self._ready(session, json_name):
            return JSONResponse({"error": "not ready"}, status_code=409)
        fault = self._fault(self.result_faults)
        body = json.dumps(self.organisation(session)).encode()
        if fault in ("reset", "truncate"):
            return _Broken(body, reset=fault == "reset")
        answer = await self._apply(fault, None)
        return answer or Response(body, media_type="application/json")

    def organisation(self, session: Session) -> dict[str, Any]:
        return {"keyInformation": {"name": f"Org {session.identifier} AS",
                                   "organizationNumber": session.identifier, "country": session.country.upper()}}

    @staticmethod
    def pdf(session: Session, name: str) -> bytes:
        return b"%PDF-1.4\n% " + f"{session.session_id} {name}".encode() + b"\n%%EOF\n"

    async def report(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        session = self._session(request)
        name = request.path_params["name"]
        if session is None or name not in session.plan or name == self.entities[0]:
            return JSONResponse({"error": "no such report"}, status_code=404)
        if not self._ready(session, name):
            return JSONResponse({"error": "not ready"}, status_code=409)
        fault = self._fault(self.result_faults)
        answer = await self._apply(fault, None)
        return answer or Response(self.pdf(session, name), media_type="application/pdf")

    # -- webhooks ------------------------------------------------------------

    def _send_webhooks(self, session: Session) -> None:
        if self.webhook_mode == "never":
            return
        notices: list[tuple[float, str]] = []
        for i, (_name, (_, end, state)) in enumerate(session.plan.items()):
            if state == "READY":
                notices.append((end, "JsonDataReady" if i == 0 else "ReportReady"))
        notices.append((session.end, "AllDone" if session.final == "ALL_DONE" else "Failed"))
        delay = self.webhook_delay if self.webhook_mode == "late" else 0.0
        with httpx.Client(timeout=5) as client:
            for when, status in notices:
                wait = when + delay - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                body = json.dumps({"sessionId": session.session_id, "status": status,
                                   "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
                msg_id = "msg_" + uuid.uuid4().hex
                for _ in range(2 if self.webhook_mode == "twice" else 1):
                    headers = {"content-type": "application/json"}
                    if self.webhook_secret:
                        stamp = int(time.time())
                        headers.update({"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                                        "webhook-signature": sign(self.webhook_secret, msg_id, stamp, body)})
                    try:
                        code = client.post(session.webhook_url or "", content=body, headers=headers).status_code
                    except httpx.HTTPError:
                        code = 0
                    with self.lock:
                        self.webhook_answers.append((msg_id, status, code))

    @contextmanager
    def serve(self) -> Iterator[str]:
        with serve_asgi(self.app, name="blackbox aml") as url:
            yield url


def sign(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def _webhook_url(hooks: Any) -> str | None:
    """The URL in the request's ``webhooks`` field, however it is shaped."""
    if isinstance(hooks, str):
        return hooks
    if isinstance(hooks, dict):
        for key in ("url", "uri", "callbackUrl"):
            if isinstance(hooks.get(key), str):
                return str(hooks[key])
    if isinstance(hooks, list) and hooks:
        return _webhook_url(hooks[0])
    return None


class _Broken(Response):
    """An answer cut short: a declared length never reached (reset) or half a JSON body (truncate)."""

    def __init__(self, body: bytes, *, reset: bool) -> None:
        super().__init__(body[: len(body) // 2], media_type="application/json")
        self.reset = reset
        self.full = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        half = self.full[: len(self.full) // 2]
        if not self.reset:
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(half)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": half})
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.full)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionResetError("the server dropped the connection")

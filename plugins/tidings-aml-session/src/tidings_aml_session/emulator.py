"""An emulator of the AML session API, faithful to PROVIDERS.md and the seed.

Sessions progress by the emulator clock: the ``jsonData`` entity is READY after
``json_delay`` seconds, report *k* (in request order) after ``report_delay * (k + 1)``,
then the session is ``ALL_DONE``; a session for an identifier in
``fail_identifiers`` turns ``FAILED`` after ``fail_after`` seconds (entities not
ready by then turn FAILED too). When the session request names a webhook URL,
the emulator POSTs Standard Webhooks-signed notices (``webhook_secret``) as each
change happens, or ``late``, ``twice`` or ``never`` (``webhooks=``): from
:meth:`run_webhooks` in-process, or from a thread while :meth:`serve` runs.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import anyio
import attrs
import httpx
import tidings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tidings.sandbox import Emulator, Scenario
from tidings.webhooks import sign

__all__ = ["AmlSessionEmulator", "WebhookMode"]

WebhookMode = Literal["on_time", "late", "twice", "never"]
COUNTRIES = ("no", "se", "fi")
ALL_WEBHOOKS = ("JsonDataReady", "ReportReady", "AllDone", "Failed")


@attrs.define
class _Session:
    id: str
    country: str
    identifier: str
    created: float
    reports: list[str]
    expands: list[str]
    fails: bool
    webhook_url: str | None
    webhook_events: frozenset[str]


@attrs.define
class _Webhook:
    due: float
    url: str
    session_id: str
    status: str
    msg_id: str


def _webhook_target(value: Any) -> tuple[str | None, frozenset[str]]:
    """The URL and statuses in a request's ``webhooks`` field (several shapes accepted)."""
    if isinstance(value, str):
        return value, frozenset(ALL_WEBHOOKS)
    if isinstance(value, Mapping):
        url = value.get("url")
        events = value.get("events") or value.get("statuses") or ALL_WEBHOOKS
        return (str(url) if url else None), frozenset(str(e) for e in events)
    if isinstance(value, list) and value:
        urls = [v if isinstance(v, str) else v.get("url") for v in value if isinstance(v, (str, Mapping))]
        statuses = {str(v["status"]) for v in value if isinstance(v, Mapping) and v.get("status")}
        return (urls[0] if urls else None), frozenset(statuses or ALL_WEBHOOKS)
    return None, frozenset()


class AmlSessionEmulator(Emulator):
    """The AML session API in a box.

    :param json_delay: emulated seconds until ``jsonData`` is READY.
    :param report_delay: emulated seconds between reports turning READY.
    :param fail_identifiers: identifiers whose sessions fail.
    :param fail_after: emulated seconds until such a session is FAILED.
    :param json_last: list ``jsonData`` after the reports in ``results`` (order must not matter).
    :param webhook_secret: sign webhooks with it (Standard Webhooks); None sends them unsigned.
    :param webhooks: ``on_time``, ``late`` (``webhook_delay`` emulated seconds after the change),
        ``twice`` (each sent again under a new webhook id) or ``never``.
    :param webhook_transport: an httpx transport to send webhooks through (default: the network).
    :param client_id: with ``client_secret``, what ``POST /oauth/token`` accepts.
    """

    provider = "aml-session"
    base_path = ""

    def __init__(
        self,
        *,
        json_delay: float = 1.0,
        report_delay: float = 2.0,
        fail_identifiers: Sequence[str] = ("999999999",),
        fail_after: float = 1.5,
        json_last: bool = False,
        webhook_secret: str | None = None,
        webhooks: WebhookMode = "on_time",
        webhook_delay: float = 3.0,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.json_delay = json_delay
        self.report_delay = report_delay
        self.fail_identifiers = frozenset(fail_identifiers)
        self.fail_after = fail_after
        self.json_last = json_last
        self.webhook_secret = webhook_secret
        self.webhooks = webhooks
        self.webhook_delay = webhook_delay
        self.webhook_transport = webhook_transport
        self.client_id = client_id
        self.client_secret = client_secret
        self.sessions: dict[str, _Session] = {}
        self.latest: dict[str, str] = {}  # identifier -> the last session started for it
        self.session_requests: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, str]] = []
        self.webhook_log: list[dict[str, Any]] = []  # {sessionId, status, answer: HTTP status or None}
        self._pending: list[_Webhook] = []
        self._lock = threading.Lock()

    # -- the session timeline ------------------------------------------------

    def _entities(self, session: _Session) -> list[tuple[str, float]]:
        """(entity, emulated seconds after creation when it is READY)."""
        reports = [(name, self.report_delay * (k + 1)) for k, name in enumerate(session.reports)]
        json_entity = ("jsonData", self.json_delay)
        return [*reports, json_entity] if self.json_last else [json_entity, *reports]

    def _end(self, session: _Session) -> tuple[str, float]:
        if session.fails:
            return "FAILED", self.fail_after
        return "ALL_DONE", max(t for _, t in self._entities(session))

    def state(self, session: _Session, at: float | None = None) -> dict[str, Any]:
        age = (self.clock.elapsed() if at is None else at) - session.created
        end_status, end_at = self._end(session)
        over = age >= end_at
        results: dict[str, str] = {}
        for name, ready_at in self._entities(session):
            if session.fails and ready_at >= self.fail_after:
                results[name] = "FAILED" if over else ("IN_PROGRESS" if age > 0 else "NOT_STARTED")
            elif age >= ready_at:
                results[name] = "READY"
            else:
                results[name] = "IN_PROGRESS" if age >= ready_at / 2 else "NOT_STARTED"
        return {"sessionId": session.id, "status": end_status if over else "IN_PROGRESS", "results": results}

    def _changes(self, session: _Session) -> list[tuple[float, str]]:
        """(emulated time, webhook status) of every change of a session."""
        changes: list[tuple[float, str]] = []
        end_status, end_at = self._end(session)
        for name, ready_at in self._entities(session):
            if not session.fails or ready_at < self.fail_after:
                changes.append((session.created + ready_at, "JsonDataReady" if name == "jsonData" else "ReportReady"))
        changes.append((session.created + end_at, "AllDone" if end_status == "ALL_DONE" else "Failed"))
        return sorted(changes, key=lambda c: c[0])

    def final_event_ids(self, session_id: str) -> set[str]:
        session = self.sessions[session_id]
        final = self.state(session, at=session.created + 1e9)
        ids = set()
        for name, value in final["results"].items():
            if value == "READY":
                ids.add(f"{session_id}:JsonDataReady" if name == "jsonData" else f"{session_id}:ReportReady:{name}")
        ids.add(f"{session_id}:{'AllDone' if final['status'] == 'ALL_DONE' else 'Failed'}")
        return ids

    # -- routes ----------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/organization/session/{sid}/json", self._json, methods=["GET"]),
            Route("/organization/session/{sid}/reports/{name}", self._report, methods=["GET"]),
            Route("/organization/session/{sid}", self._state_or_start, methods=["GET", "POST"]),
        ]

    async def _token(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))  # no python-multipart needed
        self.token_requests.append({k: str(v) for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"})

    def _bad(self, message: str, status: int = 400) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def _state_or_start(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        sid = request.path_params["sid"]
        if request.method == "POST":
            return await self._start(request, sid)
        session = self.sessions.get(sid)
        if session is None:
            return self._bad(f"unknown session {sid}", 404)
        return JSONResponse(self.state(session))

    async def _start(self, request: Request, country: str) -> Response:
        if country not in COUNTRIES:
            return self._bad(f"no session endpoint for country {country!r}", 404)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._bad("the body is not JSON")
        if not isinstance(body, dict):
            return self._bad("the body is not a JSON object")
        self.session_requests.append(body)
        identifier = body.get("identifier")
        if not isinstance(identifier, str) or not identifier.strip():
            return self._bad("identifier is required")
        nationality = body.get("nationality")
        if not isinstance(nationality, str) or nationality.lower() != country:
            return self._bad("nationality is required and must be the endpoint's country")
        lists = {}
        for name in ("expands", "reports"):
            value = body.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return self._bad(f"{name} must be a list of strings")
            lists[name] = value
        url, events = _webhook_target(body.get("webhooks"))
        a, b, c, d, e = (self.random.getrandbits(n) for n in (32, 16, 12, 12, 48))
        sid = f"{a:08x}-{b:04x}-4{c:03x}-a{d:03x}-{e:012x}"
        session = _Session(
            id=sid,
            country=country,
            identifier=identifier,
            created=self.clock.elapsed(),
            reports=lists["reports"],
            expands=lists["expands"],
            fails=identifier in self.fail_identifiers,
            webhook_url=url,
            webhook_events=events,
        )
        self.sessions[sid] = session
        self.latest[identifier] = sid
        self._schedule(session)
        return JSONResponse({"sessionId": sid}, status_code=201)

    def _ready(self, session: _Session, entity: str) -> Response | None:
        value = self.state(session)["results"].get(entity)
        if value is None:
            return self._bad(f"the session has no {entity!r}", 404)
        if value != "READY":
            return self._bad(f"{entity!r} is {value}, not READY", 409)
        return None

    async def _json(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        session = self.sessions.get(request.path_params["sid"])
        if session is None:
            return self._bad("unknown session", 404)
        refused = self._ready(session, "jsonData")
        if refused is not None:
            return refused
        data: dict[str, Any] = {
            "keyInformation": {
                "name": f"Sandbox Organisation {session.identifier} AS",
                "organizationNumber": session.identifier,
                "dunsNumber": f"{int(session.identifier) % 10**9:09d}" if session.identifier.isdigit() else None,
                "country": session.country.upper(),
            }
        }
        for expand in session.expands:
            data[expand] = {"source": "sandbox"}
        return JSONResponse(data)

    async def _report(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        session = self.sessions.get(request.path_params["sid"])
        name = request.path_params["name"]
        if session is None:
            return self._bad("unknown session", 404)
        if name == "jsonData":
            return self._bad("not a report", 404)
        refused = self._ready(session, name)
        if refused is not None:
            return refused
        pdf = f"%PDF-1.4\n% tidings sandbox report {name} for session {session.id}\n%%EOF\n".encode()
        return Response(pdf, media_type="application/pdf")

    # -- webhooks --------------------------------------------------------------

    def _schedule(self, session: _Session) -> None:
        if not session.webhook_url or self.webhooks == "never":
            return
        extra = self.webhook_delay if self.webhooks == "late" else 0.0
        copies = 2 if self.webhooks == "twice" else 1
        with self._lock:
            for at, status in self._changes(session):
                if status not in session.webhook_events:
                    continue
                for copy in range(copies):
                    self._pending.append(
                        _Webhook(
                            due=at + extra + 0.05 * copy,
                            url=session.webhook_url,
                            session_id=session.id,
                            status=status,
                            msg_id=f"msg_{self.random.getrandbits(64):016x}",
                        )
                    )

    def signed(self, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers of a webhook (signed when the emulator has a secret)."""
        headers = {"content-type": "application/json"}
        if self.webhook_secret is not None:
            stamp = int(time.time()) if timestamp is None else timestamp
            headers.update(
                {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": sign(self.webhook_secret, webhook_id, stamp, body),
                }
            )
        return headers

    async def send_due_webhooks(self) -> int:
        """POST every webhook that is due by the emulator clock; returns how many were sent."""
        now = self.clock.elapsed()
        with self._lock:
            due = sorted((w for w in self._pending if w.due <= now), key=lambda w: w.due)
            self._pending = [w for w in self._pending if w.due > now]
        if not due:
            return 0
        async with httpx.AsyncClient(transport=self.webhook_transport, timeout=10) as client:
            for webhook in due:
                body = json.dumps(
                    {"sessionId": webhook.session_id, "status": webhook.status,
                     "timestamp": tidings.format_time(self.clock.now())}
                ).encode()
                entry: dict[str, Any] = {"sessionId": webhook.session_id, "status": webhook.status, "answer": None}
                self.webhook_log.append(entry)  # logged when sent: the answer is filled in when it comes
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.post(webhook.url, content=body, headers=self.signed(webhook.msg_id, body))
                    entry["answer"] = answer.status_code
        return len(due)

    @property
    def webhooks_pending(self) -> int:
        with self._lock:
            return len(self._pending)

    async def run_webhooks(self, interval: float = 0.01) -> None:
        """Send webhooks as they fall due, until cancelled (in-process use: start it in a task group)."""
        while True:
            await self.send_due_webhooks()
            await anyio.sleep(interval)

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on loopback, sending webhooks from a thread of its own while it runs."""
        stop = threading.Event()

        async def loop() -> None:
            while not stop.is_set():
                await self.send_due_webhooks()
                await anyio.sleep(0.01)

        sender = threading.Thread(target=anyio.run, args=(loop,), daemon=True, name="aml-session webhooks")
        with super().serve(host, port) as url:
            sender.start()
            try:
                yield url
            finally:
                stop.set()
                sender.join(10)

    # -- scenarios -------------------------------------------------------------

    def scenario(self, size: int = 20) -> Scenario:
        """A batch of sessions (about ``size`` events): all succeed but the last, which fails."""
        count = max(2, size // 4)
        identifiers = [f"{910000000 + 7919 * i}" for i in range(count - 1)]
        identifiers.append(sorted(self.fail_identifiers)[0] if self.fail_identifiers else "999999999")
        return Scenario(
            params={"country": "no", "identifier": identifiers, "reports": "aml-report,sanctions-report"},
        )

    def expected_ids(self, scenario: Scenario) -> frozenset[str]:
        """Every event of the session last started for each identifier (a retried POST starts another)."""
        ids: set[str] = set()
        for identifier in scenario.params.get("identifier", []):
            if identifier in self.latest:
                ids |= self.final_event_ids(self.latest[identifier])
        return frozenset(ids)

"""An independent emulator of the financing validation activity feed, for black-box tests.

Written from /work/shared/PROVIDERS.md and the seed only (it shares no code with the
plugin or its bundled emulator). ``GET /v1/activity?after=&before=&limit=&offset=``
answers ``{"links": [...], "events": [...]}``; ``POST /oauth/token`` issues client
credentials tokens. Switches make the variants a real server may show: inclusive or
exclusive ``after``, ascending or descending order, a silent cap on ``limit``,
seed-style foreign ``links``, unknown extra fields, events that become visible late,
tokens that expire early, and one-shot faults (500/502/503, 429 with ``Retry-After``
in seconds or as an HTTP date, truncated bodies, connection resets, slow answers).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import secrets
import threading
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FING = "FING_duplicate_financing_check"
DDOC = "DDOC_duplicate_document_check"


def iso(when: datetime, ms: bool = True) -> str:
    when = when.astimezone(UTC)
    if ms:
        return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"
    return f"{when:%Y-%m-%dT%H:%M:%S}Z"


def parse(text: str) -> datetime:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def make_event(at: datetime, *, status: str = "REGU", ms: bool = True, extra: bool = False,
               data_set: str | None = None) -> dict[str, Any]:
    """One event shaped like the seed's."""
    event: dict[str, Any] = {
        "event_identification": str(uuid.uuid4()),
        "event_date_time": iso(at, ms),
        "pool_identification": "POOL-1234",
        "submitter_batch_identification": "BATCH-1234",
        "batch_identification": str(uuid.uuid4()),
        "submitter_data_set_identification": "FIN-1234",
        "data_set_identification": data_set or str(uuid.uuid4()),
        "request_identifications": [str(uuid.uuid4()), str(uuid.uuid4())],
        "event_details": [
            {"service_name": FING, "status": status},
            {"service_name": DDOC, "registered_document_identification": str(uuid.uuid4()), "status": "EXCT"},
        ],
    }
    if extra:
        event["unknown_field"] = {"nested": [1, 2, 3]}
        event["event_details"][0]["unexpected"] = True
    return event


class Server:
    """State and switches of one emulated API; ``app`` is its Starlette application."""

    def __init__(
        self,
        *,
        inclusive: bool = True,
        order: str = "asc",
        cap: int | None = None,
        default_limit: int = 20,
        foreign_links: bool = True,
        tokens: tuple[str, ...] = ("good-token",),
        clients: dict[str, str] | None = None,
        audience: str | None = None,
        slow: float = 0.0,
        past_end: int | None = None,
    ) -> None:
        self.inclusive = inclusive
        self.order = order
        self.cap = cap
        self.default_limit = default_limit
        self.foreign_links = foreign_links
        self.static_tokens = set(tokens)
        self.clients = clients or {}
        self.audience = audience
        self.slow = slow
        self.past_end = past_end  # a status for an offset beyond the last event (None: an empty page)
        self.events: list[dict[str, Any]] = []
        self.hidden: list[tuple[int, dict[str, Any]]] = []  # (visible from activity request n, event)
        self.faults: deque[str] = deque()  # applied to the next /activity requests, one each
        self.token_faults: deque[str] = deque()
        self.issued: set[str] = set()
        self.token_bodies: list[Any] = []
        self.requests: list[dict[str, str]] = []
        self.auth_headers: list[str | None] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/v1/activity", self.activity, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
        ])

    # -- set-up ------------------------------------------------------------

    def add(self, event: dict[str, Any], visible_from_request: int | None = None) -> dict[str, Any]:
        with self.lock:
            if visible_from_request is None:
                self.events.append(event)
            else:
                self.hidden.append((visible_from_request, event))
        return event

    def expire_tokens(self) -> None:
        """Every issued token is refused from now on (401), as a server does at expiry."""
        with self.lock:
            self.issued.clear()

    # -- endpoints ------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        fault = self.token_faults.popleft() if self.token_faults else None
        if fault == "503":
            return Response("busy", status_code=503, headers={"Retry-After": "0"})
        if fault == "truncate":
            return Response('{"access_token": "abc', media_type="application/json")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        self.token_bodies.append(body)
        if (
            not isinstance(body, dict)
            or body.get("grant_type") != "client_credentials"
            or self.clients.get(body.get("client_id")) != body.get("client_secret")
            or body.get("client_id") not in self.clients
            or (self.audience is not None and body.get("audience") != self.audience)
        ):
            return JSONResponse({"error": "access_denied"}, status_code=401)
        token = secrets.token_hex(16)
        with self.lock:
            self.issued.add(token)
        return JSONResponse({"access_token": token, "expires_in": 43200, "token_type": "Bearer"})

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):]
        return token in self.static_tokens or token in self.issued

    async def activity(self, request: Request) -> Response:
        query = dict(request.query_params)
        with self.lock:
            self.requests.append(query)
            n = len(self.requests)
            for entry in [h for h in self.hidden if h[0] <= n]:
                self.hidden.remove(entry)
                self.events.append(entry[1])
            fault = self.faults.popleft() if self.faults else None
        self.auth_headers.append(request.headers.get("authorization"))
        if self.slow:
            await asyncio.sleep(self.slow)
        if fault == "expire":
            self.expire_tokens()
            fault = None
        if fault == "slow":
            await asyncio.sleep(0.5)
        if fault in ("500", "502"):
            return Response("<html>oops</html>", status_code=int(fault), media_type="text/html")
        if fault == "503":
            return Response("", status_code=503, headers={"Retry-After": "0"})
        if fault == "429":
            return JSONResponse({"error": "too many"}, status_code=429, headers={"Retry-After": "1"})
        if fault == "429date":
            when = datetime.now(UTC) + timedelta(seconds=1)
            return Response("slow down", status_code=429,
                            headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)})
        if not self._authorised(request.headers.get("authorization")):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            after = parse(query["after"]) if "after" in query else None
            before = parse(query["before"]) if "before" in query else None
            limit = int(query.get("limit", self.default_limit))
            offset = int(query.get("offset", 0))
        except ValueError:
            return JSONResponse({"error": "bad query"}, status_code=400)
        if limit < 1 or offset < 0:
            return JSONResponse({"error": "bad query"}, status_code=400)
        if self.cap is not None:
            limit = min(limit, self.cap)  # silently
        with self.lock:
            pool = list(self.events)
        keyed = [(parse(e["event_date_time"]), i, e) for i, e in enumerate(pool)]
        if after is not None:
            keyed = [k for k in keyed if (k[0] >= after if self.inclusive else k[0] > after)]
        if before is not None:
            keyed = [k for k in keyed if k[0] < before]
        keyed.sort(key=lambda k: (k[0], k[1]), reverse=self.order == "desc")
        if self.past_end is not None and offset > 0 and offset >= len(keyed):
            return JSONResponse({"error": "offset out of range"}, status_code=self.past_end)
        page = [k[2] for k in keyed[offset:offset + limit]]
        body = {"links": self._links(request, limit, offset, len(keyed)), "events": page,
                "total_count": len(keyed), "unknown_top_level": {"x": 1}}
        text = json.dumps(body)
        if fault == "truncate":
            return Response(text[: len(text) // 2], media_type="application/json")
        if fault == "reset":
            return _Reset(text)
        return Response(text, media_type="application/json")

    def _links(self, request: Request, limit: int, offset: int, total: int) -> list[dict[str, str]]:
        base = "https://developer.swift.com/api/v1/activity" if self.foreign_links else str(request.url.path)
        last = max(0, (total - 1) // limit * limit)
        rels = {"self": offset, "first": 0, "next": offset + limit, "previous": max(0, offset - limit), "last": last}
        return [{"href": f"{base}?limit={limit},offset={o}", "rel": r, "type": "GET"} for r, o in rels.items()]


class _Reset(Response):
    """Start a 200 answer, send part of it, then drop the connection."""

    def __init__(self, text: str) -> None:
        super().__init__(text, media_type="application/json")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"100000")]})
        await send({"type": "http.response.body", "body": self.body[:20], "more_body": True})
        raise ConnectionResetError("emulated connection reset")

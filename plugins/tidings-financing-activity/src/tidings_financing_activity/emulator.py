"""An emulator of the financing validation API: the activity feed, follow-ups, and OAuth2.

Faithful to PROVIDERS.md and the seed: ``GET /v1/activity?after=&before=&limit=&offset=``
answers ``{"links": [...], "events": [...]}`` oldest first, with links that
name another host and write ``limit=20,offset=40`` (as the seed's do); ``after``
is inclusive by default; events sharing one ``event_date_time`` are common; an
event can become visible some seconds after its ``event_date_time`` (late).
``POST /oauth/token`` on the emulator's own host issues tokens that expire by
the emulator's clock. Variants are constructor arguments.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import attrs
import tidings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tidings.sandbox import Emulator, Scenario

from tidings_financing_activity.models import DOCUMENT_CHECK, FINANCING_CHECK

__all__ = ["FOREIGN_LINK_BASE", "FinancingActivityEmulator"]

FOREIGN_LINK_BASE = "https://developer.swift.com/api/v1/activity"
STATUSES = ("REGU", "REDU", "DFIN", "FNCD", "CANC", "PNDG")


def _stamp(when: datetime) -> str:
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


@attrs.define
class _Stored:
    seq: int
    at: datetime
    visible_from: datetime
    body: dict[str, Any]


class FinancingActivityEmulator(Emulator):
    """The activity feed of the trade financing validation service.

    :param inclusive_after: ``after`` keeps events at exactly that time (True, the
        harder reading) or drops them (False).
    :param order: ``"asc"`` (the [ours] reading) or ``"desc"``.
    :param default_limit: the page size when the client sends no ``limit``.
    :param max_limit: a larger ``limit`` is silently capped to this.
    :param foreign_links: write ``links`` to another host, as the seed does (else to this host).
    :param token_ttl: seconds an OAuth2 token lives, by the emulator's clock (``expires_in``).
    :param clients: OAuth2 client id -> secret accepted by ``POST /oauth/token``.
    :param audience: when set, the token request must carry this audience.

    The static bearer token (``token``, default ``sandbox-token``) is accepted as well.
    """

    provider = "financing-activity"
    base_path = "/v1"

    def __init__(
        self,
        *,
        inclusive_after: bool = True,
        order: Literal["asc", "desc"] = "asc",
        default_limit: int = 20,
        max_limit: int = 1000,
        foreign_links: bool = True,
        token_ttl: float = 43200.0,
        clients: Mapping[str, str] | None = None,
        audience: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.inclusive_after = inclusive_after
        self.order = order
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.foreign_links = foreign_links
        self.token_ttl = token_ttl
        self.clients = dict(clients if clients is not None else {"sandbox-client": "sandbox-secret"})
        self.audience = audience
        self.tokens: dict[str, datetime] = {}  # issued token -> expiry (emulated time)
        self.tokens_issued = 0
        self.events: list[_Stored] = []
        self.requests_by_id: dict[str, dict[str, Any]] = {}  # financing validation requests

    # -- building the feed ---------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def add_event(
        self,
        at: datetime,
        *,
        status: str | None = "REGU",
        match_type: str | None = None,
        data_set: str | None = None,
        visible_from: datetime | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Add one event at ``at`` (visible from ``visible_from``, default ``at``: later is a late event).

        :return: the event's body as ``GET /activity`` serves it.
        """
        at = _ms(at)
        data_set = data_set or self.new_id()
        request_ids = [r for r, req in self.requests_by_id.items() if req["data_set_identification"] == data_set]
        if not request_ids:
            request_ids = [self.new_id(), self.new_id()]
            for rid in request_ids:
                self.requests_by_id[rid] = {
                    "request_identification": rid,
                    "data_set_identification": data_set,
                    "submitter_data_set_identification": f"FIN-{len(self.requests_by_id) + 1000}",
                    "status": status,
                }
        details: list[dict[str, Any]] = []
        if status is not None:
            details.append({"service_name": FINANCING_CHECK, "status": status})
            for rid in request_ids:
                self.requests_by_id[rid]["status"] = status
                self.requests_by_id[rid]["status_date_time"] = _stamp(at)
        if match_type is not None:
            details.append(
                {
                    "service_name": DOCUMENT_CHECK,
                    "registered_document_identification": self.new_id(),
                    "status": match_type,
                }
            )
        first = self.requests_by_id[request_ids[0]]
        body = {
            "event_identification": event_id or self.new_id(),
            "event_date_time": _stamp(at),
            "pool_identification": "POOL-1234",
            "submitter_batch_identification": "BATCH-1234",
            "batch_identification": self.new_id(),
            "submitter_data_set_identification": first["submitter_data_set_identification"],
            "data_set_identification": data_set,
            "request_identifications": request_ids,
            "event_details": details,
        }
        self.events.append(_Stored(len(self.events), at, visible_from or at, body))
        return body

    def register(self, *, duplicate: bool = False, delay: float = 2.0) -> str:
        """Register a financing: its matching result arrives ``delay`` emulated seconds later.

        :return: the data set id (the events' subject).
        """
        data_set = self.new_id()
        when = self.clock.now() + timedelta(seconds=delay)
        if duplicate:
            self.add_event(when, status="REDU", match_type="EXCT", data_set=data_set)
        else:
            self.add_event(when, status="REGU", data_set=data_set)
        return data_set

    def scenario(self, size: int = 20) -> Scenario:
        """``size`` events in groups sharing one time (1 to 7 per group), plus three before ``after``."""
        base = _ms(self.clock.now() - timedelta(hours=1))
        for i in range(3):
            self.add_event(base - timedelta(minutes=10, seconds=i), status="REGU")
        ids: list[str] = []
        groups = (3, 5, 1, 7, 2, 4, 6)
        t, g = base, 0
        while len(ids) < size:
            for _ in range(min(groups[g % len(groups)], size - len(ids))):
                status = self.random.choice(STATUSES)
                match = "EXCT" if status in ("REDU", "DFIN") else None
                ids.append(self.add_event(t, status=status, match_type=match)["event_identification"])
            g += 1
            t += timedelta(seconds=1, milliseconds=250)
        return Scenario(
            expected_ids=frozenset(ids), page_size=4, after=_stamp(base - timedelta(seconds=1))
        )

    def visible(self) -> list[_Stored]:
        now = self.clock.now()
        return [e for e in self.events if e.visible_from <= now]

    # -- auth -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :]
        if token == self.token:
            return True
        expires = self.tokens.get(token)
        return expires is not None and self.clock.now() < expires

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        try:
            form: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            form = dict((await request.form()).items())
        if not isinstance(form, dict) or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        client_id = str(form.get("client_id", ""))
        if client_id not in self.clients or self.clients[client_id] != form.get("client_secret"):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if self.audience is not None and form.get("audience") != self.audience:
            return JSONResponse({"error": "invalid_audience"}, status_code=403)
        token = f"fa-{self.new_id()}"
        self.tokens[token] = self.clock.now() + timedelta(seconds=self.token_ttl)
        self.tokens_issued += 1
        return JSONResponse({"access_token": token, "expires_in": int(self.token_ttl), "token_type": "Bearer"})

    # -- the API -----------------------------------------------------------------------

    def _links(self, request: Request, limit: int, offset: int, total: int) -> list[dict[str, str]]:
        base = FOREIGN_LINK_BASE if self.foreign_links else str(request.url.replace(query=""))
        last = max(0, (total - 1) // limit * limit)
        rels = [("self", offset), ("first", 0), ("next", offset + limit), ("previous", max(0, offset - limit)),
                ("last", last)]
        return [{"href": f"{base}?limit={limit},offset={o}", "rel": rel, "type": "GET"} for rel, o in rels]

    async def _activity(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized({"error": "invalid_token", "error_description": "missing, wrong or expired token"})
        q = request.query_params
        try:
            after = tidings.parse_time(q["after"]) if q.get("after") else None
            before = tidings.parse_time(q["before"]) if q.get("before") else None
            limit = int(q.get("limit", self.default_limit))
            offset = int(q.get("offset", 0))
        except ValueError as exc:
            return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, status_code=400)
        if limit < 1 or offset < 0:
            return JSONResponse({"error": "invalid_request", "error_description": "limit >= 1, offset >= 0"}, 400)
        limit = min(limit, self.max_limit)
        rows = self.visible()
        if after is not None:
            rows = [e for e in rows if (e.at >= after if self.inclusive_after else e.at > after)]
        if before is not None:
            rows = [e for e in rows if e.at < before]
        rows.sort(key=lambda e: (e.at, e.seq), reverse=self.order == "desc")
        page = rows[offset : offset + limit]
        return JSONResponse(
            {"links": self._links(request, limit, offset, len(rows)), "events": [e.body for e in page]}
        )

    async def _status(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        found = self.requests_by_id.get(request.query_params.get("request_identification", ""))
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(found)

    async def _requests(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        q = request.query_params
        rows: Iterable[dict[str, Any]] = self.requests_by_id.values()
        if q.get("data_set_identification"):
            rows = [r for r in rows if r["data_set_identification"] == q["data_set_identification"]]
        if q.get("request_identification"):
            rows = [r for r in rows if r["request_identification"] == q["request_identification"]]
        return JSONResponse({"financing_validation_requests": list(rows)})

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/v1/activity", self._activity),
            Route("/v1/status", self._status),
            Route("/v1/financing-validation-requests", self._requests),
        ]

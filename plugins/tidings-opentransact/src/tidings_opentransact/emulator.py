"""An emulator of the OpenTransact Activities API, faithful to its documents.

``GET /v1/activities`` answers a JSON:API document (``application/vnd.api+json``)
with ``page[number]`` (from 1) and ``page[size]`` (default 30, at most 100),
``meta {current-page, page-count, count}`` and ``links`` (self, first, prev,
next, last where applicable), and the documented filters. Errors are JSON:API
error documents with the documented codes. Switches, each a constructor argument:

- ``newest_first``: the list order, which the documents do not give (both must work);
- ``inclusive_bounds``: whether ``created-between`` bounds include their ends;
- ``auth``: ``"bearer"``, ``"basic"`` (``Authorization: Basic <key>``) or ``"either"``;
- ``links_base``: the base written into ``links`` (default: the request's own);
  the seed's ``https://api.opentransact.com/v1`` is off-host in the sandbox, which
  tests that links are never followed;
- ``arrivals_while_paging``: that many new activities are created, one per request
  for a page after the first, so page contents shift under the client
  (``scenario()`` makes it 2 unless given, 0 included);
- ``late_by``: those arrivals carry a ``created-at`` that many seconds in the past
  (late events, which land among activities already listed, whatever the order);
- ``require_media_type``: answer 406 unless ``Accept`` names the JSON:API media type.

Activities are visible once their ``created-at`` has come (the emulator's clock).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tidings import format_time, parse_time
from tidings.sandbox import Emulator, Scenario

__all__ = ["OpenTransactEmulator"]

MEDIA_TYPE = "application/vnd.api+json"
ACTIONS = ("created", "updated", "deleted")
PLAIN_FILTERS = {
    "subject-id": ("subject", "id"),
    "subject-type": ("subject", "type"),
    "profile-id": ("profile", "id"),
    "application-id": ("application", "id"),
}


class _Refused(Exception):
    def __init__(self, status: int, code: int | None, title: str, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.parameter = status, code, title, detail, parameter

    def response(self) -> Response:
        error: dict[str, Any] = {"status": str(self.status), "title": self.title, "detail": self.detail}
        if self.code is not None:
            error["code"] = str(self.code)
        if self.parameter is not None:
            error["source"] = {"parameter": self.parameter}
        return JSONResponse({"errors": [error]}, status_code=self.status, media_type=MEDIA_TYPE)


def _time(text: str, parameter: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise _Refused(
            422, 10009, "Invalid timestamp", f"{text!r} is not an ISO-8601 UTC timestamp", parameter
        ) from None


class OpenTransactEmulator(Emulator):
    """The Activities API of OpenTransact, in a box."""

    provider = "opentransact"
    base_path = "/v1"
    max_page_size = 100

    def __init__(
        self,
        *,
        newest_first: bool = True,
        inclusive_bounds: bool = True,
        auth: Literal["bearer", "basic", "either"] = "bearer",
        links_base: str | None = None,
        arrivals_while_paging: int | None = None,
        late_by: float = 0.0,
        require_media_type: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.newest_first = newest_first
        self.inclusive_bounds = inclusive_bounds
        self.auth = auth
        self.links_base = links_base
        self.arrivals_while_paging = arrivals_while_paging
        self.arrivals_left = arrivals_while_paging or 0
        self.late_by = late_by
        self.require_media_type = require_media_type
        self.activities: list[dict[str, Any]] = []
        self.profile_id = self._uuid()
        self.application_id = self._uuid()

    # -- the data ----------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def now(self) -> datetime:
        """The emulated time, to the second (``created-at`` has second precision)."""
        return self.clock.now().astimezone(UTC).replace(microsecond=0)

    def add(
        self,
        *,
        created_at: datetime | None = None,
        action: str = "created",
        subject_type: str = "transactions",
        subject_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        previous: dict[str, Any] | None = None,
        current: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record one activity (visible once ``created_at`` has come) and return it."""
        when = format_time(created_at or self.now())
        previous = previous if previous is not None else ({} if action == "created" else {"status": "pending"})
        current = current if current is not None else ({} if action == "deleted" else {"status": "settled"})
        diff = {k: [previous.get(k), current.get(k)] for k in sorted({*previous, *current})
                if previous.get(k) != current.get(k)}
        activity = {
            "type": "activities",
            "id": self._uuid(),
            "attributes": {
                "action": action,
                "previous": previous,
                "current": current,
                "diff": diff,
                "metadata": dict(metadata or {}),
                "created-at": when,
                "updated-at": when,
            },
            "relationships": {
                "profile": {"data": {"type": "profiles", "id": self.profile_id}},
                "author": {"data": {"type": "profiles", "id": self.profile_id}},
                "application": {"data": {"type": "applications", "id": self.application_id}},
                "subject": {"data": {"type": subject_type, "id": subject_id or self._uuid()}},
            },
        }
        self.activities.append(activity)
        return activity

    def scenario(self, size: int = 20) -> Scenario:
        """``size`` activities over the last minutes, three to a second (ties across pages of 4),
        plus two that are created while the first poll pages."""
        start = self.now() - timedelta(seconds=size + 60)
        subjects: list[str] = []
        for i in range(size):
            if i % 3 == 0:
                subjects.append(self._uuid())
            subject = subjects[self.random.randrange(len(subjects))]
            self.add(
                created_at=start + timedelta(seconds=i // 3),
                action=ACTIONS[i % 3],
                subject_type=self.random.choice(("transactions", "profiles", "accounts")),
                subject_id=subject,
                metadata={"batch": str(i % 2)},
            )
        if self.arrivals_while_paging is None:
            self.arrivals_left = 2
        return Scenario(page_size=4)

    def expected_ids(self, scenario: Scenario) -> frozenset[str]:
        now = self.now()
        return frozenset(a["id"] for a in self.activities if parse_time(a["attributes"]["created-at"]) <= now)

    # -- the API -------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        schemes = {"bearer": ("Bearer",), "basic": ("Basic",), "either": ("Bearer", "Basic")}[self.auth]
        return any(header == f"{scheme} {self.token}" for scheme in schemes)

    def routes(self) -> Sequence[BaseRoute]:
        return [Route(f"{self.base_path}/activities", self._list, methods=["GET"])]

    async def _list(self, request: Request) -> Response:
        try:
            self._check_auth(request)
            self._check_media_type(request)
            query = self._query(request)
            number, size = query.pop("page[number]"), query.pop("page[size]")
            if number > 1 and self.arrivals_left > 0:
                self.arrivals_left -= 1
                self.add(created_at=self.now() - timedelta(seconds=self.late_by), metadata={"batch": "late"})
            rows = self._select(query)
        except _Refused as refused:
            return refused.response()
        page_count = max(1, math.ceil(len(rows) / size))
        body = {
            "data": rows[(number - 1) * size : number * size],
            "meta": {"current-page": number, "page-count": page_count, "count": len(rows)},
            "links": self._links(request, query, number, size, page_count),
        }
        return JSONResponse(body, media_type=MEDIA_TYPE)

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise _Refused(401, 10002, "Missing authorization header", "send Authorization: Bearer <token>")
        if not self.authorized(request):
            raise _Refused(401, 10003, "Invalid token", "the token is not valid")

    def _check_media_type(self, request: Request) -> None:
        if self.require_media_type and MEDIA_TYPE not in request.headers.get("accept", ""):
            raise _Refused(406, None, "Not Acceptable", f"send Accept: {MEDIA_TYPE}")

    def _query(self, request: Request) -> dict[str, Any]:
        query: dict[str, Any] = {"page[number]": 1, "page[size]": 30}
        for key, value in request.query_params.multi_items():
            if key in ("page[number]", "page[size]"):
                if not value.isdigit() or int(value) < 1:
                    raise _Refused(422, 10007, "Invalid page", f"{key} must be a positive integer", key)
                if key == "page[size]" and int(value) > self.max_page_size:
                    raise _Refused(422, 10008, "Invalid page size", f"page[size] is at most {self.max_page_size}", key)
                query[key] = int(value)
            elif key in ("filter[created-between][start]", "filter[created-between][finish]",
                         "filter[updated-between][start]", "filter[updated-between][finish]"):
                query[key] = _time(value, key)
            elif key.startswith("filter[metadata][") and key.endswith("]") and len(key) > len("filter[metadata][]"):
                query[key] = value
            elif key in ("filter[action]", *(f"filter[{name}]" for name in PLAIN_FILTERS)):
                if key == "filter[action]" and value not in ACTIONS:
                    raise _Refused(422, 10010, "Invalid filter", "filter[action] is created, updated or deleted", key)
                query[key] = value
            else:
                raise _Refused(422, 10006, "Invalid parameter", f"{key} is not a parameter of this endpoint", key)
        return query

    def _select(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        now = self.now()
        rows = []
        for activity in self.activities:
            attributes = activity["attributes"]
            created = parse_time(attributes["created-at"])
            if created > now or not self._matches(activity, created, parse_time(attributes["updated-at"]), query):
                continue
            rows.append(activity)
        rows.sort(key=lambda a: (a["attributes"]["created-at"], a["id"]), reverse=self.newest_first)
        return rows

    def _within(self, value: datetime, query: dict[str, Any], name: str) -> bool:
        start, finish = query.get(f"filter[{name}][start]"), query.get(f"filter[{name}][finish]")
        if self.inclusive_bounds:
            return (start is None or value >= start) and (finish is None or value <= finish)
        return (start is None or value > start) and (finish is None or value < finish)

    def _matches(self, activity: dict[str, Any], created: datetime, updated: datetime, query: dict[str, Any]) -> bool:
        if not self._within(created, query, "created-between") or not self._within(updated, query, "updated-between"):
            return False
        attributes, relationships = activity["attributes"], activity["relationships"]
        for key, value in query.items():
            if key.startswith("filter[metadata]["):
                if str(attributes["metadata"].get(key[len("filter[metadata][") : -1])) != value:
                    return False
            elif key == "filter[action]":
                if attributes["action"] != value:
                    return False
            elif key.startswith("filter[") and key[7:-1] in PLAIN_FILTERS:
                relation, field = PLAIN_FILTERS[key[7:-1]]
                if relationships[relation]["data"][field] != value:
                    return False
        return True

    def _links(
        self, request: Request, query: dict[str, Any], number: int, size: int, page_count: int
    ) -> dict[str, str]:
        base = self.links_base or f"{str(request.base_url).rstrip('/')}{self.base_path}"
        filters = [(k, format_time(v) if isinstance(v, datetime) else v) for k, v in query.items()]

        def link(n: int) -> str:
            return f"{base}/activities?" + urlencode([("page[number]", n), ("page[size]", size), *filters])

        links = {"self": link(number), "first": link(1)}
        if number > 1:
            links["prev"] = link(min(number - 1, page_count))
        if number < page_count:
            links["next"] = link(number + 1)
        links["last"] = link(page_count)
        return links

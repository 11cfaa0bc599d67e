"""A tiny provider and its in-memory server, for the core's own tests.

The server keeps a list of events and answers ``GET /events?after=&offset=&limit=``
with every event whose time is at or after ``after`` (inclusive, as a robust
reading demands), oldest first, sliced by offset and limit. Faults are queued
responses (or exceptions) served before the real answer.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import httpx
import tidings
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tidings import Event, Page, ProviderInfo, hookimpl
from tidings.sandbox import Emulator, Scenario

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return tidings.format_time(T0 + timedelta(seconds=seconds))


@attrs.frozen
class TinyCursor:
    newest: datetime | None = None
    poll_after: datetime | None = None
    offset: int = 0


@attrs.frozen
class TinyRecord:
    id: str
    time: datetime
    subject: str
    kind: str


class TinyServer:
    def __init__(self, events: list[dict[str, Any]] | None = None, *, host: str = "tiny.test") -> None:
        self.events = list(events or [])
        self.faults: deque[Any] = deque()
        self.requests: list[httpx.Request] = []
        self.host = host
        self.token: str | None = None

    def add(self, id: str, seconds: float, subject: str = "s1", kind: str = "note") -> None:
        self.events.append({"id": id, "time": at(seconds), "subject": subject, "kind": kind})

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            fault = self.faults.popleft()
            if isinstance(fault, Exception):
                raise fault
            return fault
        if self.token is not None and request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "unauthorized"})
        after = request.url.params.get("after")
        offset = int(request.url.params.get("offset", 0))
        limit = int(request.url.params.get("limit", 3))
        rows = sorted(self.events, key=lambda e: e["time"])
        if after:
            cut = tidings.parse_time(after)
            rows = [e for e in rows if tidings.parse_time(e["time"]) >= cut]
        return httpx.Response(200, content=json.dumps({"events": rows[offset : offset + limit]}).encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class TinyFeed:
    """A feed provider: ``checkpoint`` keeps the newest time; pages by offset within one poll."""

    name = "tiny-feed"
    kind = "feed"
    limit = 3

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            kind=self.kind,  # type: ignore[arg-type]
            description="a tiny test provider",
            cursor_type=TinyCursor,
            default_base_url="https://tiny.test/api",
        )

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> Page:
        if cursor.offset == 0:
            after = cursor.newest - timedelta(seconds=ctx.overlap) if cursor.newest else ctx.after
        else:
            after = cursor.poll_after
        limit = ctx.page_size or self.limit
        params: dict[str, Any] = {"offset": cursor.offset, "limit": limit}
        if after is not None:
            params["after"] = tidings.format_time(after)
        body = await ctx.http.get_json("events", params=params)
        records = body["events"]
        full = len(records) == limit
        offset = cursor.offset + len(records) if full else 0
        return Page(records=records, more=full, advance=lambda c: attrs.evolve(c, poll_after=after, offset=offset))

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> Event:
        tidings.require(record, ("id", "time", "subject", "kind"), provider=self.name, id_field="id")
        try:
            when = tidings.parse_time(record["time"])
        except ValueError as exc:
            raise tidings.ParseError(f"bad time: {exc}", provider=self.name, record_id=record["id"]) from None
        return Event.make(
            provider=self.name,
            id=record["id"],
            subject=record["subject"],
            type=record["kind"],
            status=None,
            occurred_at=when,
            raw=record,
            record_type=TinyRecord,
        )

    @hookimpl
    def checkpoint(self, cursor: TinyCursor, event: Event) -> TinyCursor:
        if cursor.newest is None or event.occurred_at > cursor.newest:
            return attrs.evolve(cursor, newest=event.occurred_at)
        return cursor


class TinyTracker(TinyFeed):
    """A tracker over the same server: each ``subject`` param ends at its ``done`` event."""

    name = "tiny-tracker"
    kind = "tracker"

    @hookimpl
    def start(self, ctx: tidings.WatchContext) -> list[tidings.Stream]:
        return [tidings.Stream("all", subjects=frozenset(ctx.param_list("subject")))]

    @hookimpl
    def is_terminal(self, event: Event) -> bool:
        return event.type == "done"


class TinyEmulator(Emulator):
    """The tiny server as a sandbox emulator, for the contract suite."""

    provider = "tiny-feed"
    base_path = "/api"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = TinyServer()

    def routes(self) -> list[Route]:
        async def events(request: Request) -> Response:
            if not self.authorized(request):
                return self.unauthorized()
            url = httpx.URL(str(request.url))
            answer = self.server.handler(httpx.Request("GET", url))
            return Response(answer.content, status_code=answer.status_code, media_type="application/json")

        return [Route("/api/events", events)]

    def scenario(self, size: int = 20) -> Scenario:
        for i in range(size):
            self.server.add(f"e{i:03d}", i // 4)  # four events share each time: ties across pages
        return Scenario(expected_ids=frozenset(e["id"] for e in self.server.events), page_size=3)


def make_watch(server: TinyServer, provider: str = "tiny-feed", **kwargs: object) -> tidings.Watch:
    """A watch on ``server`` tuned for tests: no waits between polls, tiny retry waits."""
    options: dict[str, object] = {
        "transport": server.transport(),
        "until_idle": provider == "tiny-feed",
        "interval": 0.0,
        "max_interval": 0.05,
        "retry_base_wait": 0.001,
        "retry_max_wait": 0.01,
    }
    options.update(kwargs)
    return tidings.Watch(provider, **options)  # type: ignore[arg-type]

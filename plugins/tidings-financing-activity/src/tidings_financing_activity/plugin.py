"""The ``financing-activity`` provider: hook implementations.

One poll reads ``GET /activity?after=A&limit=L&offset=O`` with a fixed ``A``,
raising ``O`` by the records received, until a page is empty (a server may cap
``limit`` silently, so a short page proves nothing). The next poll starts from
``A = newest delivered - overlap`` (floored at the user's ``--after``), so late
events and events sharing a timestamp are read again and the core's recent ids
remove what was delivered already. The newest time of a poll counts only once
the poll has ended, so a poll stopped half-way (in either list order) is
repeated from the same ``A``. Links in the body are never followed: they may
name another host (the seed's do).
"""

from __future__ import annotations

import functools
import operator
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import tidings
from tidings import Event, Page, Param, ParseError, ProviderInfo, TransientError, WatchContext, hookimpl

from tidings_financing_activity.auth import FinancingOAuth
from tidings_financing_activity.models import FINANCING_CHECK, ActivityCursor, ActivityEvent

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_TERMINAL_STATUSES",
    "NAME",
    "EnrichedRecord",
    "format_after",
]

NAME = "financing-activity"
DEFAULT_LIMIT = 100
DEFAULT_TERMINAL_STATUSES = frozenset({"FNCD", "DFIN", "CANC"})
MIN_OVERLAP = timedelta(milliseconds=1)
DEFAULT_OVERLAP = 30.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENRICH_CHOICES = ("status", "financing-validation-requests")
_PAST_THE_END = frozenset({400, 404, 416})  # how some servers answer an offset beyond the last event

PARAMS = (
    Param("client_id", "OAuth2 client id (client credentials); without it --token is a static bearer token"),
    Param("client_secret", "OAuth2 client secret (with client_id)"),
    Param("audience", "OAuth2 audience sent to the token endpoint"),
    Param("token_url", "OAuth2 token endpoint (default: api.X -> https://auth.X/oauth/token)"),
    Param("overlap", f"seconds re-read before the newest delivered time, for late events "
          f"(default: the watch's overlap, at least {DEFAULT_OVERLAP:g})", type=float, minimum=0),
    Param("limit", f"events asked for per page (default {DEFAULT_LIMIT}; --page-size wins)", type=int, minimum=1),
    Param("page_end", "'empty' (default): a poll ends at an empty page (safe when a server caps limit "
          "silently); 'short': already at a page shorter than limit (one request less, only if limit is honoured)",
          choices=("empty", "short"), default="empty"),
    Param("enrich", "fetch the record behind each event: 'status' (GET /status per request id) "
          "or 'financing-validation-requests'; off by default", choices=ENRICH_CHOICES),
    Param("terminal_status", "financing statuses marked terminal (default FNCD,DFIN,CANC); "
          "comma-separated or repeated; 'none' for none", repeatable=True),
)


class EnrichedRecord(dict[str, Any]):
    """A raw event exactly as received (it *is* that dict) carrying its follow-up record aside."""

    __slots__ = ("follow_up",)

    def __init__(self, raw: Mapping[str, Any], follow_up: Any) -> None:
        super().__init__(raw)
        self.follow_up = follow_up


def format_after(when: datetime) -> str:
    """``2021-11-18T11:08:23.003Z``: UTC, milliseconds floored (the seed's form)."""
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _limit(ctx: WatchContext) -> int:
    return ctx.page_size or ctx.options.limit or DEFAULT_LIMIT


def _overlap(ctx: WatchContext) -> timedelta:
    seconds = ctx.options.overlap
    if seconds is None:
        seconds = max(ctx.overlap, DEFAULT_OVERLAP)
    return max(timedelta(seconds=seconds), MIN_OVERLAP)


def _poll_after(ctx: WatchContext, cursor: ActivityCursor) -> datetime | None:
    """The ``after`` of a new poll: newest delivered minus the overlap, never before the start."""
    if cursor.newest is None:
        return cursor.start
    after = cursor.newest - _overlap(ctx)
    if cursor.start is not None and after < cursor.start:
        return cursor.start
    return after


@functools.cache  # one set per watch's option value, not one per event
def _terminal_statuses(values: tuple[str, ...]) -> frozenset[str]:
    if not values:
        return DEFAULT_TERMINAL_STATUSES
    return frozenset({v.upper() for v in values} - {"NONE"})


# -- hooks -------------------------------------------------------------------


@hookimpl
def provider_info() -> ProviderInfo:
    from tidings_financing_activity.emulator import FinancingActivityEmulator

    return ProviderInfo(
        name=NAME,
        kind="feed",
        description="Trade financing validation activity feed (GET /activity, polled with after/offset/limit)",
        cursor_type=ActivityCursor,
        params=PARAMS,
        emulator=FinancingActivityEmulator,
        default_base_url="https://api.securefinancing.com/v1",
    )


@hookimpl
def make_auth(token: str | None, params: Mapping[str, Any]) -> httpx.Auth | None:
    client_id = tidings.param(params, "client_id")
    if not client_id:
        return None  # the core sends --token as a static bearer token
    secret = tidings.param(params, "client_secret")
    if not secret:
        raise tidings.ConfigurationError("client_id needs --param client_secret=…", provider=NAME)
    return FinancingOAuth(
        tidings.param(params, "token_url") or None,
        str(client_id),
        str(secret),
        audience=tidings.param(params, "audience"),
    )


@hookimpl
def initial_cursor(ctx: WatchContext) -> ActivityCursor:
    return ActivityCursor(start=ctx.after, poll_after=ctx.after)


@hookimpl
async def fetch_page(ctx: WatchContext, cursor: ActivityCursor) -> Page:
    limit = _limit(ctx)
    after = cursor.poll_after if cursor.offset else _poll_after(ctx, cursor)
    query: dict[str, Any] = {"after": format_after(EPOCH if after is None else after)}
    query["limit"] = limit
    query["offset"] = cursor.offset
    response = await ctx.http.request("GET", "activity", params=query, check_status=False)
    if cursor.offset and response.status_code in _PAST_THE_END:
        # the same after/limit answered at a smaller offset: this refusal says "no more"
        body: Any = {"events": []}
    else:
        ctx.http.raise_for_status(response)
        body = ctx.http.json(response)
    records = body.get("events") if isinstance(body, dict) else None
    if records is None:
        records = []
    if not isinstance(records, list):
        raise TransientError(
            f"GET /activity answered 200 without an 'events' list ({type(body).__name__}): retrying", provider=NAME
        )
    ended = not records if ctx.options.page_end == "empty" else len(records) < limit
    next_offset = 0 if ended else cursor.offset + len(records)
    enrich = ctx.options.enrich
    if enrich:
        records = [await _enrich(ctx, enrich, r) for r in records]

    def advance(c: ActivityCursor) -> ActivityCursor:
        if not ended:
            return attrs.evolve(c, poll_after=after, offset=next_offset)
        # the poll is over: only now does its newest time move the next poll's ``after``
        newest = c.newest if c.poll_newest is None or (c.newest and c.newest >= c.poll_newest) else c.poll_newest
        return attrs.evolve(c, newest=newest, poll_newest=None, poll_after=after, offset=0)

    return Page(records=records, more=not ended, advance=advance)


@hookimpl
def parse_event(record: Any) -> Event:
    # the per-event hot path: plain indexing first; the checks' own messages only when it fails
    try:
        event_id = record["event_identification"]
        when = record["event_date_time"]
        details = record.get("event_details") or ()
    except (KeyError, TypeError, AttributeError):
        event_id = when = None
    if event_id is None or when is None:
        tidings.require(record, ("event_identification", "event_date_time"), provider=NAME,
                        id_field="event_identification")
        raise ParseError("expected a JSON object", provider=NAME)  # a mapping require accepts, yet unreadable
    if event_id.__class__ is not str:
        event_id = str(event_id)
    try:
        occurred = tidings.parse_time(when)
    except (ValueError, TypeError) as exc:
        raise ParseError(f"event_date_time: {exc}", provider=NAME, record_id=event_id) from None
    primary: Any = None
    if details.__class__ is not list and details != ():
        raise ParseError("event_details: expected a list of objects", provider=NAME, record_id=event_id)
    for detail in details:
        if detail.__class__ is not dict and not isinstance(detail, dict):
            raise ParseError("event_details: expected a list of objects", provider=NAME, record_id=event_id)
        if primary is None and detail.get("service_name") == FINANCING_CHECK:
            primary = detail
    if primary is None:
        primary = details[0] if details else {}
    subject = record.get("data_set_identification")
    service = primary.get("service_name")
    status = primary.get("status")
    if isinstance(record, EnrichedRecord):
        typed = tidings.structure(record, ActivityEvent, provider=NAME, record_id=event_id)
        return Event.make(NAME, event_id, None if subject is None else str(subject), str(service or "activity"),
                          None if status is None else str(status), occurred, record, False, ActivityEvent,
                          attrs.evolve(typed, follow_up=record.follow_up))
    return Event.make(
        NAME,
        event_id,
        None if subject is None else subject if subject.__class__ is str else str(subject),
        service if service.__class__ is str else str(service or "activity"),
        None if status is None else status if status.__class__ is str else str(status),
        occurred,
        record,
        False,
        ActivityEvent,
    )


_occurred_at = operator.attrgetter("occurred_at")


@hookimpl
def checkpoint(cursor: ActivityCursor, event: Event) -> ActivityCursor:
    # Held aside until the poll ends: in descending order the first events are the newest, and a
    # poll stopped half-way must restart from the same ``after`` or the older rest would be skipped.
    if cursor.poll_newest is None or event.occurred_at > cursor.poll_newest:
        return attrs.evolve(cursor, poll_newest=event.occurred_at)
    return cursor


@hookimpl
def checkpoint_page(cursor: ActivityCursor, events: Sequence[Event]) -> ActivityCursor:
    # ``checkpoint`` folded over the page, building one cursor (not one per event of an ascending page)
    newest = max(map(_occurred_at, events))
    if cursor.poll_newest is None or newest > cursor.poll_newest:
        return attrs.evolve(cursor, poll_newest=newest)
    return cursor


@hookimpl
def is_terminal(ctx: WatchContext, event: Event) -> bool:
    return event.type == FINANCING_CHECK and event.status in _terminal_statuses(ctx.options.terminal_status)


# -- enrichment ----------------------------------------------------------------


async def _follow_up(ctx: WatchContext, path: str, query: Mapping[str, str]) -> Any:
    response = await ctx.http.request("GET", path, params=dict(query), check_status=False)
    if response.status_code == 404:
        return None
    ctx.http.raise_for_status(response)
    return ctx.http.json(response)


class _FollowUps:
    """Follow-ups one watch session fetched lately, so an overlap re-read does not fetch them again."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._found: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def get(self, key: tuple[str, str]) -> Any:
        return self._found.get(key, _MISSING)

    def put(self, key: tuple[str, str], value: Any) -> None:
        self._found[key] = value
        while len(self._found) > self.capacity:
            self._found.popitem(last=False)


_MISSING = object()
_sessions: weakref.WeakKeyDictionary[Any, _FollowUps] = weakref.WeakKeyDictionary()  # keyed by ctx.http


async def _enrich(ctx: WatchContext, how: str, record: Any) -> Any:
    if not isinstance(record, dict):
        return record  # parse_event dead-letters it
    follow_ups = _sessions.setdefault(ctx.http, _FollowUps())
    key = (how, str(record.get("event_identification")))
    cached = follow_ups.get(key)
    if cached is _MISSING:
        cached = await _fetch_follow_up(ctx, how, record)
        follow_ups.put(key, cached)
    return EnrichedRecord(record, cached)


async def _fetch_follow_up(ctx: WatchContext, how: str, record: dict[str, Any]) -> Any:
    if how == "status":
        ids = record.get("request_identifications") or []
        return {str(i): await _follow_up(ctx, "status", {"request_identification": str(i)}) for i in ids}
    data_set = record.get("data_set_identification")  # how == "financing-validation-requests"
    if data_set is None:
        return None
    return await _follow_up(ctx, "financing-validation-requests", {"data_set_identification": str(data_set)})

"""The OpenTransact Activities provider: hook implementations.

One poll lists ``GET {base}/activities`` with ``filter[created-between][start]``
fixed for the whole poll and ``page[number]`` counted by the plugin from 1 to
``meta.page-count``; the next poll starts at the greatest ``created-at`` delivered
minus ``ctx.overlap`` (at least one second, so an exclusive bound loses no tie).
The order of the list is not documented, so nothing here depends on it:
de-duplication by activity id (the core's recent ids) removes what a page shift
or an inclusive bound serves twice. A poll whose last page counts more activities
(``meta.count``) than its first polls again at once: newest first, what was created
meanwhile sits on pages already read. Bounds go out in whole seconds, rounded down.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
import httpx
from tidings import (
    BasicAuth,
    ConfigurationError,
    Event,
    Page,
    Param,
    ParseError,
    ProviderError,
    ProviderInfo,
    WatchContext,
    format_time,
    hookimpl,
    param,
    parse_time,
    require,
)

from tidings_opentransact.errors import raise_for_errors
from tidings_opentransact.models import Activity, ActivityCursor

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PAGE_SIZE",
    "MEDIA_TYPE",
    "PROVIDER",
    "checkpoint",
    "fetch_page",
    "initial_cursor",
    "make_auth",
    "next_poll",
    "overlap",
    "parse_event",
    "provider_info",
    "query_filters",
]

PROVIDER = "opentransact"
DEFAULT_BASE_URL = "https://api.opentransact.com/v1"
DEFAULT_PAGE_SIZE = 30
MEDIA_TYPE = "application/vnd.api+json"
MIN_MARGIN = timedelta(seconds=1)  # created-at has second precision: an exclusive start must not lose ties

#: ``--param`` keys passed through as ``filter[<key>]`` (exact match).
PLAIN_FILTERS = ("subject-id", "subject-type", "action", "profile-id", "application-id")
METADATA_PREFIX = "metadata."
AUTH_SCHEMES = ("bearer", "basic")


def _emulator() -> Any:
    """The sandbox of ``tidings follow opentransact --sandbox``: accepts Bearer and Basic alike."""
    from tidings_opentransact.emulator import OpenTransactEmulator

    return OpenTransactEmulator(auth="either")


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        kind="feed",
        description="OpenTransact Activities: every change to your data, as a JSON:API feed",
        cursor_type=ActivityCursor,
        params=(
            Param("auth", "how the token is sent: 'bearer' or 'basic' (Authorization: Basic <token>)",
                  choices=AUTH_SCHEMES, default="bearer"),
            Param("overlap", "seconds each poll reaches back before the newest activity delivered, for late "
                  "activities (default: the watch's overlap, 5); at least 1 is always used", type=float, minimum=0),
            Param("metadata.KEY", "only activities whose metadata KEY equals the value: filter[metadata][KEY]",
                  work=True),
            Param("subject-id", "only activities about this subject id: filter[subject-id]", work=True),
            Param("subject-type", "only activities about this kind of subject (transactions...): filter[subject-type]",
                  work=True),
            Param("action", "only 'created', 'updated' or 'deleted' activities: filter[action]", work=True),
            Param("profile-id", "only activities of this profile: filter[profile-id]", work=True),
            Param("application-id", "only activities of this application: filter[application-id]", work=True),
        ),
        emulator=_emulator,
        default_base_url=DEFAULT_BASE_URL,
    )


@hookimpl
def make_auth(token: str | None, params: Mapping[str, Any]) -> httpx.Auth | None:
    if str(param(params, "auth", "bearer")).lower() == "basic":  # checked against AUTH_SCHEMES already
        if not token:
            raise ConfigurationError("--param auth=basic needs --token (the API key)", provider=PROVIDER)
        return BasicAuth(api_key=token)
    return None  # the core's Bearer token


def query_filters(options: Any) -> list[tuple[str, str]]:
    """The documented filters among the watch's options (``ctx.options``), as query parameters."""
    query = [(f"filter[metadata][{name}]", str(value)) for name, value in sorted(options.metadata.items())]
    for key in PLAIN_FILTERS:
        value = getattr(options, key.replace("-", "_"))
        if value is not None:
            query.append((f"filter[{key}]", str(value)))
    return query


@hookimpl
def initial_cursor(ctx: WatchContext) -> ActivityCursor:
    return ActivityCursor(newest=None, start=ctx.after, page=1)


def overlap(ctx: WatchContext) -> float:
    """Seconds each poll reaches back before the newest delivered: ``--param overlap`` or ``ctx.overlap``."""
    seconds: float | None = ctx.options.overlap
    return ctx.overlap if seconds is None else seconds


def next_poll(ctx: WatchContext, cursor: ActivityCursor) -> ActivityCursor:
    """The cursor of the poll after ``cursor``'s: page 1, from the newest delivered minus the overlap."""
    if cursor.newest is None:
        return attrs.evolve(cursor, page=1, count=None)
    start = cursor.newest - max(timedelta(seconds=overlap(ctx)), MIN_MARGIN)
    if cursor.start is not None and start < cursor.start:
        start = cursor.start  # never reach back before --after (or a start already passed)
    return attrs.evolve(cursor, start=start, page=1, count=None)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _has_more(body: Mapping[str, Any], page: int, served: int) -> bool:
    """Is there a page after ``page``? An empty page ends the poll; then ``meta.page-count``
    decides, else ``links.next`` (only whether it is there), else the next page is asked for:
    the server may cap ``page[size]`` silently, so a short page does not prove it was the last."""
    if served == 0:
        return False
    meta = body.get("meta")
    if isinstance(meta, Mapping):
        count = _count(meta.get("page-count"))
        if count is not None:
            return page < count
    links = body.get("links")
    if isinstance(links, Mapping) and "next" in links:
        return bool(links["next"])
    return True


def _total(body: Mapping[str, Any]) -> int | None:
    """``meta.count``: how many activities match the poll's filters right now."""
    meta = body.get("meta")
    return _count(meta.get("count")) if isinstance(meta, Mapping) else None


def _query_time(value: datetime) -> str:
    """A bound as the API writes times (``2021-08-11T04:38:14Z``): whole seconds, rounded down."""
    return format_time(value.replace(microsecond=0))


def _before(record: Any, after: datetime) -> bool:
    """Is ``record`` an activity created before ``after``? (False when that cannot be told.)"""
    try:
        return parse_time(record["attributes"]["created-at"]) < after
    except (KeyError, TypeError, ValueError):
        return False


@hookimpl
async def fetch_page(ctx: WatchContext, cursor: ActivityCursor) -> Page:
    size = ctx.page_size or DEFAULT_PAGE_SIZE
    query: list[tuple[str, str]] = [("page[number]", str(cursor.page)), ("page[size]", str(size))]
    if cursor.start is not None:
        query.append(("filter[created-between][start]", _query_time(cursor.start)))
    query.extend(query_filters(ctx.options))
    response = await ctx.http.request(
        "GET", "activities", params=query, headers={"Accept": MEDIA_TYPE}, check_status=False
    )
    body = raise_for_errors(ctx, response)
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ProviderError(
            "the activities list is not a JSON:API document with a 'data' array: check the base URL",
            provider=ctx.provider,
            response=response,
        )
    served = body["data"]
    records = served
    if ctx.after is not None:  # the start was rounded down to whole seconds: nothing before --after
        records = [r for r in served if not _before(r, ctx.after)]
    page = cursor.page
    total = _total(body)
    if _has_more(body, page, len(served)):
        first_count = total if page == 1 else cursor.count
        return Page(records=records, more=True, advance=lambda c: attrs.evolve(c, page=page + 1, count=first_count))
    if page > 1 and total is not None and cursor.count is not None and total > cursor.count:
        # activities were created while this poll paged: newest first they sit on pages
        # already read, so a new poll starts at once instead of waiting (or ending idle)
        return Page(records=records, more=True, advance=lambda c: next_poll(ctx, c))
    return Page(records=records, more=False, advance=lambda c: next_poll(ctx, c))


def _subject(record: Mapping[str, Any]) -> str | None:
    relationships = record.get("relationships")
    if not isinstance(relationships, Mapping):
        return None
    subject = relationships.get("subject")
    data = subject.get("data") if isinstance(subject, Mapping) else None
    if not isinstance(data, Mapping) or data.get("id") is None:
        return None
    kind = data.get("type")
    return f"{kind}/{data['id']}" if kind else str(data["id"])


@hookimpl
def parse_event(record: Any) -> Event:
    """An activity: id ``id``, time ``attributes.created-at``, type ``activity.<action>``,
    subject ``<subject type>/<subject id>``. Without ``created-at`` (the seed's list
    example) it cannot be positioned: a ParseError naming the field and the id."""
    require(record, ("id", "attributes"), provider=PROVIDER, id_field="id")
    rid = str(record["id"])
    attributes = record["attributes"]
    if not isinstance(attributes, Mapping):
        raise ParseError("'attributes' is not a JSON object", provider=PROVIDER, record_id=rid)
    for name in ("action", "created-at"):
        if attributes.get(name) is None:
            raise ParseError(f"missing required field 'attributes.{name}'", provider=PROVIDER, record_id=rid)
    try:
        occurred_at = parse_time(attributes["created-at"])
    except (TypeError, ValueError) as exc:
        raise ParseError(f"'attributes.created-at' is not a time: {exc}", provider=PROVIDER, record_id=rid) from None
    return Event.make(
        provider=PROVIDER,
        id=rid,
        subject=_subject(record),
        type=f"activity.{attributes['action']}",
        status=None,
        occurred_at=occurred_at,
        raw=record,
        record_type=Activity,
    )


@hookimpl
def checkpoint(cursor: ActivityCursor, event: Event) -> ActivityCursor:
    """Fold the delivered activity's time into ``newest``; the poll's start and page stay."""
    if cursor.newest is None or event.occurred_at > cursor.newest:
        return attrs.evolve(cursor, newest=event.occurred_at)
    return cursor

"""The request-status provider: follow request ids until every inner request is final.

One stream per request id (``Stream(key=id, subjects={"call:" + id})``: the
stream's subject is the followed call, never one of its inner requests, even
when an inner request has the call's own id). Each poll reads
every page of ``GET api/v3/global/call/{id}?page=N&size=M`` (``page`` 0-based)
and hands on only the inner requests whose status is new or changed since the
cursor's last known status, so an unchanged ``OPEN`` costs nothing downstream.
The page after which every inner request is final carries ``Page.ended = {id}``.
``GLOBAL_1001`` (in a 200 body or with an error status) is retried with backoff;
``GLOBAL_1003`` ends the id at once with a ``request.unknown`` event.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import tidings
from tidings import Event, Page, Param, ProviderInfo, Stream, WatchContext, hookimpl

from tidings_request_status.models import (
    FINAL_STATUSES,
    BulkResponse,
    ErrorResponse,
    InnerRequest,
    RequestStatusCursor,
)

__all__ = [
    "BULK_LIMIT",
    "NAME",
    "call_subject",
    "checkpoint",
    "fetch_page",
    "initial_cursor",
    "is_terminal",
    "make_auth",
    "parse_event",
    "provider_info",
    "start",
]

NAME = "request-status"
BULK_LIMIT = 200  # items a bulk call may carry [doc]
DEFAULT_PAGE_SIZE = 100
DEFAULT_STATUS_PATH = "api/v3/global/call/{id}"
DEFAULT_BULK_PATH = "api/v2/bulk/subscriber/status"
DEFAULT_RETRY_CODES = ("GLOBAL_1001",)
DEFAULT_UNKNOWN_CODES = ("GLOBAL_1003",)
BULK_ATTEMPTS = 5

log = logging.getLogger("tidings.request_status")

PARAMS = (
    Param("request_id", "a request id to follow (a regular call's Request-Id or a bulk item's requestId)",
          repeatable=True, work=True),
    Param("request_ids_file", "a file of request ids to follow, one a line (blank lines and # comments skipped)",
          work=True),
    Param("bulk_file", "a JSON list of bulk items [{subscriberIdentifiers: {type, value}, content: {...}}] to "
          "submit (in calls of at most 200) before following the request ids they return", work=True),
    Param("bulk_path", "the bulk call's path", default=DEFAULT_BULK_PATH),
    Param("bulk_method", "the bulk call's HTTP method", choices=("PUT", "POST", "PATCH"), default="PUT"),
    Param("bulk_follow", "'items': follow each bulk item's requestId; 'call': follow the bulk call's "
          "Request-Id response header (one id a call, inner requests paged)", choices=("items", "call"),
          default="items"),
    Param("auth_header", "send the token in this header (e.g. X-API-Key) instead of Authorization: Bearer"),
    Param("page_size", "inner requests per page, the 'size' query parameter (--page-size wins)", type=int,
          minimum=1, default=DEFAULT_PAGE_SIZE),
    Param("status_path", "the status path, '{id}' replaced by the request id", default=DEFAULT_STATUS_PATH),
    Param("retry_codes", "error codes retried with backoff (comma-separated or repeated)", repeatable=True,
          default=DEFAULT_RETRY_CODES),
    Param("unknown_codes", "error codes that end an id as unknown (comma-separated or repeated)",
          repeatable=True, default=DEFAULT_UNKNOWN_CODES),
)


# -- description and configuration --------------------------------------------


@hookimpl
def provider_info() -> ProviderInfo:
    from tidings_request_status.emulator import RequestStatusEmulator

    return ProviderInfo(
        name=NAME,
        kind="tracker",
        description="Asynchronous request status (GET api/v3/global/call/{id}) until every inner request is final",
        cursor_type=RequestStatusCursor,
        params=PARAMS,
        emulator=RequestStatusEmulator,
        default_base_url=None,  # PROVIDERS.md names no production host: pass --base-url
    )


@hookimpl
def make_auth(token: str | None, params: Mapping[str, Any]) -> httpx.Auth | None:
    """A bearer token by default; ``--param auth_header=X-API-Key`` sends it in that header instead."""
    header = tidings.param(params, "auth_header")
    if token and header:
        return tidings.ApiKeyHeader(token, str(header))
    return None


@hookimpl
async def start(ctx: WatchContext) -> list[Stream]:
    """One stream per request id: from ``request_id``, ``request_ids_file`` and a submitted ``bulk_file``."""
    ids: list[str] = list(ctx.options.request_id)
    if ctx.options.request_ids_file:
        ids.extend(_read_ids_file(ctx, ctx.options.request_ids_file))
    if ctx.options.bulk_file:
        ids.extend(await _submit_bulk(ctx, _read_bulk_file(ctx, ctx.options.bulk_file)))
    unique = list(dict.fromkeys(i for i in ids if i))
    if not unique:
        raise tidings.ConfigurationError(
            "no request id to follow: add --param request_id=ID (repeatable), --param request_ids_file=PATH "
            "or --param bulk_file=PATH",
            provider=NAME,
        )
    return [Stream(key=i, subjects=frozenset({call_subject(i)})) for i in unique]


def call_subject(request_id: str) -> str:
    """The subject of the stream following ``request_id``.

    Not the id itself: a regular call's inner request has the call's own id, and its
    terminal event must not end the stream while other inner requests are open. The
    stream ends only through ``Page.ended``.
    """
    return f"call:{request_id}"


@hookimpl
def initial_cursor() -> RequestStatusCursor:
    return RequestStatusCursor()


# -- the four provider hooks -----------------------------------------------------


@hookimpl
async def fetch_page(ctx: WatchContext, cursor: RequestStatusCursor) -> Page:
    """Read page ``cursor.page`` of one id; hand on the inner requests whose status is new."""
    request_id = ctx.stream.key
    done = ctx.stream.subjects or frozenset({call_subject(request_id)})
    size = ctx.page_size or ctx.options.page_size
    path = ctx.options.status_path.replace("{id}", request_id)
    response = await ctx.http.request("GET", path, params={"page": cursor.page, "size": size}, check_status=False)
    body = _body_or_none(response)
    code = _error_code(body)
    if code and code in _codes(ctx.options.retry_codes):
        raise tidings.TransientError(
            f"{code} for request {request_id} (HTTP {response.status_code}): "
            f"{_text(body, 'errorMessage') or 'service unavailable'}; retrying with backoff",
            provider=NAME,
            url=response.request.url,
            retry_after=tidings.parse_retry_after(response.headers.get("retry-after")),
            code=code,
        )
    if code and code in _codes(ctx.options.unknown_codes):
        return Page(records=[body], ended=done)
    ctx.http.raise_for_status(response)
    if body is None:
        ctx.http.json(response)  # raises TransientError: the body is not JSON
    if code:
        # another error code inside a 2xx: final for this id, reported as an event
        return Page(records=[body], ended=done)
    assert isinstance(body, dict)
    content = body.get("content")
    if not isinstance(content, list):
        raise tidings.TransientError(
            f"the answer for request {request_id} has neither an error code nor a content list: retrying",
            provider=NAME,
            url=response.request.url,
        )
    return _page_of(cursor, content, body.get("pageable"), size, done)


@hookimpl
def parse_event(ctx: WatchContext, record: Any) -> Event:
    """An inner request's status (``request.open``, ``request.success``...) or an error of the id."""
    if isinstance(record, Mapping) and "requestId" not in record and record.get("errorCode"):
        return _error_event(ctx, record)
    tidings.require(record, ("requestId", "status"), provider=NAME, id_field="requestId")
    inner_id, status = record["requestId"], record["status"]
    if not isinstance(inner_id, str) or not isinstance(status, str) or not inner_id or not status:
        raise tidings.ParseError(
            "requestId and status must be non-empty strings", provider=NAME, record_id=str(inner_id)
        )
    return Event.make(
        provider=NAME,
        id=f"{inner_id}:{status}",
        subject=inner_id,
        type=f"request.{status.lower()}",
        status=status,
        occurred_at=datetime.now(UTC),  # the API carries no time: when it was observed
        raw=record,
        terminal=_final(status),
        record_type=InnerRequest,
    )


@hookimpl
def checkpoint(cursor: RequestStatusCursor, event: Event) -> RequestStatusCursor:
    """Remember the inner request's last delivered status."""
    if event.record_type is InnerRequest and event.subject is not None and event.status is not None:
        return attrs.evolve(cursor, statuses={**cursor.statuses, event.subject: event.status})
    return cursor


@hookimpl
def is_terminal(event: Event) -> bool:
    """Final inner statuses (SUCCESS, FAILURE, INTERNAL_ERROR) and error events are terminal."""
    return event.terminal or (event.record_type is InnerRequest and _final(event.status))


# -- paging ------------------------------------------------------------------------


def _page_of(
    cursor: RequestStatusCursor, content: list[Any], pageable: Any, size: int, done: str | frozenset[str]
) -> Page:
    known = dict(cursor.statuses)
    records: list[Any] = []
    unreadable = 0
    for item in content:
        inner_id = item.get("requestId") if isinstance(item, dict) else None
        status = item.get("status") if isinstance(item, dict) else None
        if not isinstance(inner_id, str) or not isinstance(status, str) or not inner_id or not status:
            unreadable += 1
            records.append(item)  # dead-lettered by parse_event, with its reason
            continue
        before = known.get(inner_id)
        if before == status or _final(before):
            continue  # unchanged, or a stale answer after a final status: final never changes
        known[inner_id] = status
        records.append(item)
    total_pages = _int(pageable, "totalPages")
    total_elements = _int(pageable, "totalElements")
    last = cursor.page >= total_pages - 1 if total_pages is not None else len(content) < size
    items = cursor.cycle_items + len(content)
    unreadable += cursor.cycle_unreadable
    ended: frozenset[str] = frozenset()
    if last:
        # every inner request seen in this pass is final, and we know at least as many as the server has;
        # a call with no inner request known yet is not ended (the server may not have registered them)
        need = items if total_elements is None else min(total_elements, items)
        seen_any = bool(known) or unreadable > 0
        if seen_any and all(_final(s) for s in known.values()) and len(known) + unreadable >= need:
            ended = frozenset({done}) if isinstance(done, str) else done
        page, items, unreadable = 0, 0, 0
    else:
        page = cursor.page + 1
    advance = None
    if (page, items, unreadable) != (cursor.page, cursor.cycle_items, cursor.cycle_unreadable):

        def advance(c: RequestStatusCursor) -> RequestStatusCursor:
            return attrs.evolve(c, page=page, cycle_items=items, cycle_unreadable=unreadable)

    return Page(records=records, more=not last, advance=advance, ended=ended)


def _error_event(ctx: WatchContext, record: Mapping[str, Any]) -> Event:
    request_id = ctx.stream.key
    code = str(record["errorCode"])
    unknown = code in _codes(ctx.options.unknown_codes)
    return Event.make(
        provider=NAME,
        id=f"{request_id}:{code}",
        subject=request_id,
        type="request.unknown" if unknown else "request.error",
        status=code,
        occurred_at=datetime.now(UTC),
        raw=record,
        terminal=True,
        record_type=ErrorResponse,
    )


# -- the start path: ids from params, files and bulk calls -------------------------


def _read_ids_file(ctx: WatchContext, path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first id
    except OSError as exc:
        raise tidings.ConfigurationError(f"cannot read request_ids_file {path!r}: {exc}", provider=NAME) from exc
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def _read_bulk_file(ctx: WatchContext, path: str) -> list[Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise tidings.ConfigurationError(f"cannot read bulk_file {path!r}: {exc}", provider=NAME) from exc
    if isinstance(data, dict) and isinstance(data.get("bulk"), list):
        data = data["bulk"]
    if not isinstance(data, list):
        raise tidings.ConfigurationError(
            f"bulk_file {path!r} must hold a JSON list of bulk items (or {{\"bulk\": [...]}})", provider=NAME
        )
    return data


async def _submit_bulk(ctx: WatchContext, items: list[Any]) -> list[str]:
    """Submit ``items`` in calls of at most 200; return the request ids to follow."""
    path, method, follow = ctx.options.bulk_path, ctx.options.bulk_method, ctx.options.bulk_follow
    ids: list[str] = []
    for start_at in range(0, len(items), BULK_LIMIT):
        chunk = items[start_at : start_at + BULK_LIMIT]
        response = await _bulk_call(ctx, method, path, chunk)
        header = response.headers.get("request-id")
        if follow == "call" and header:
            ids.append(header)
            continue
        answer = tidings.structure(ctx.http.json(response), BulkResponse, provider=NAME)
        for result in answer.bulk:
            if result.request_id:
                ids.append(result.request_id)
            else:
                log.warning(
                    "bulk item %s refused: %s %s", result.subscriber_identifiers, result.error_code,
                    result.error_message,
                )
    return ids


async def _bulk_call(ctx: WatchContext, method: str, path: str, chunk: list[Any]) -> httpx.Response:
    """One bulk call, retried only where the server says it did nothing (GLOBAL_1001, 429, 503)."""
    retry_codes = _codes(ctx.options.retry_codes)
    for attempt in range(BULK_ATTEMPTS):
        response = await ctx.http.request(method, path, json={"bulk": chunk}, check_status=False)
        code = _error_code(_body_or_none(response))
        busy = (code and code in retry_codes) or response.status_code in (429, 503)
        if not busy:
            ctx.http.raise_for_status(response)
            if code:
                raise tidings.ProviderError(
                    f"the bulk call was refused: {code}", provider=NAME, response=response, code=code
                )
            return response
        if attempt + 1 < BULK_ATTEMPTS:
            retry_after = tidings.parse_retry_after(response.headers.get("retry-after"))
            await anyio.sleep(max(retry_after or 0.0, 0.5 * 2**attempt))
    raise tidings.RetriesExhausted(
        f"the bulk call stayed busy after {BULK_ATTEMPTS} attempts; nothing was followed yet: run again",
        provider=NAME,
    )


# -- small readers -------------------------------------------------------------------


def _final(status: str | None) -> bool:
    """Is ``status`` final (``SUCCESS``, ``FAILURE``, ``INTERNAL_ERROR``, in any letter case)?"""
    return status is not None and status.upper() in FINAL_STATUSES


def _body_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        code = body.get("errorCode")
        if code:
            return str(code)
    return ""


def _text(body: Any, key: str) -> str:
    return str(body.get(key) or "") if isinstance(body, dict) else ""


def _int(mapping: Any, key: str) -> int | None:
    if isinstance(mapping, dict):
        value = mapping.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@functools.cache  # one set per watch's option value, not one per page
def _codes(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(values)

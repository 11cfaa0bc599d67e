"""The bank-sync provider: trigger a synchronisation and follow its event queue.

``start`` subscribes a queue (``POST /queues``), triggers the sync of one, several
or all connections and returns one stream keyed by the queue id whose subjects are
the connection ids. ``fetch_page`` reads ``GET /queues/{queue_id}`` and keeps the
events after the cursor (the greatest event id delivered, compared as a number), so
it is correct whether reading removes events from the queue or not. A connection
ends at its ``SYNC_ALL_SUCCESS`` (whatever its status says) or at ``AUTH_FAILED``.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import anyio
import attrs
import httpx
import tidings
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tidings import Event, Page, Param, ProviderInfo, Stream, WatchContext, hookimpl

from tidings_bank_sync.models import QueueCursor, QueueEvent
from tidings_bank_sync.queue import (
    PROVIDER,
    add_done,
    connection_id_from_link,
    connection_of,
    event_number,
    parse_queue_body,
    select_new,
)

__all__ = ["DEFAULT_BASE_URL", "TERMINAL_TYPES", "TOKEN_URL"]

DEFAULT_BASE_URL = "https://api.oxlin.io/v2.1"
TOKEN_URL = "https://auth.oxlin.io/token"
SYNC_TYPES = ("ALL", "LIST_ACCOUNTS")
TERMINAL_TYPES = frozenset({"SYNC_ALL_SUCCESS", "AUTH_FAILED"})
START_ATTEMPTS = 10
KEPT = 256  # fingerprints and set-aside ids remembered in the cursor
START_BASE_WAIT = 0.05
START_MAX_WAIT = 2.0

PARAMS = (
    Param("connection_id", "connection to synchronise and follow, or 'all' for every connection (needed "
          "without queue_id)", repeatable=True, work=True),
    Param("type", "sync type of one connection: ALL or LIST_ACCOUNTS (which chains into ALL)"),
    Param("queue_id", "follow this existing queue instead of subscribing a new one (no sync is triggered)", work=True),
    Param("trigger", "true/false: trigger the sync (default: true without queue_id, false with it)"),
    Param("type_in", "where the sync type is sent: query, body or both (default both)"),
    Param("end_on_auth_failed", "true/false: AUTH_FAILED ends its connection's watch (default true)"),
    Param("client_id", "OAuth2 client id (client credentials against token_url) instead of --token"),
    Param("client_secret", "OAuth2 client secret"),
    Param("token_url", f"OAuth2 token endpoint (default {TOKEN_URL})"),
    Param("scope", "OAuth2 scope sent to the token endpoint"),
    Param("token_body", "form or json: how the token request is sent (default form)"),
    Param("start_attempts", f"attempts of each start request on transient faults (default {START_ATTEMPTS})"),
)


def _make_emulator() -> Any:
    from tidings_bank_sync.emulator import BankSyncEmulator

    return BankSyncEmulator()


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        kind="tracker",
        description="bank account synchronisation followed through its event queue, until SYNC_ALL_SUCCESS",
        cursor_type=QueueCursor,
        params=PARAMS,
        emulator=_make_emulator,
        default_base_url=DEFAULT_BASE_URL,
    )


def _flag(value: Any, default: bool, name: str) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise tidings.ConfigurationError(f"--param {name} must be true or false, not {value!r}", provider=PROVIDER)


@hookimpl
def make_auth(token: str | None, params: Mapping[str, Any]) -> httpx.Auth | None:
    client_id = tidings.param(params, "client_id")
    client_secret = tidings.param(params, "client_secret")
    if client_id and client_secret:
        body = str(tidings.param(params, "token_body") or "form").lower()
        if body not in ("form", "json"):
            raise tidings.ConfigurationError("--param token_body must be form or json", provider=PROVIDER)
        return tidings.OAuth2ClientCredentials(
            str(tidings.param(params, "token_url") or TOKEN_URL),
            str(client_id),
            str(client_secret),
            scope=tidings.param(params, "scope"),
            form=body == "form",
        )
    if client_id or client_secret:
        raise tidings.ConfigurationError(
            "client credentials need both --param client_id and --param client_secret", provider=PROVIDER
        )
    return None  # the core's Bearer <token>


# -- start: subscribe, trigger -------------------------------------------------


async def _retrying(ctx: WatchContext, send: Callable[[int], Awaitable[Any]]) -> Any:
    """Run ``send(attempt)`` again on transient faults (start is not retried by the engine)."""
    attempts = int(tidings.param(ctx.params, "start_attempts") or START_ATTEMPTS)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = float(getattr(exc, "retry_after", None) or 0.0)
        backoff = min(START_MAX_WAIT, START_BASE_WAIT * 2 ** (state.attempt_number - 1))
        return max(retry_after, random.uniform(0, backoff))

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait,
        retry=retry_if_exception_type(tidings.TransientError),
        sleep=anyio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await send(attempt.retry_state.attempt_number)
    raise AssertionError("unreachable")  # pragma: no cover


async def _subscribe(ctx: WatchContext) -> str:
    async def send(_: int) -> str:
        response = await ctx.http.request("POST", "queues")
        body = ctx.http.json(response)
        queue = tidings.structure(body, _QueueId, provider=PROVIDER) if isinstance(body, Mapping) else None
        if queue is None or not queue.id:
            raise tidings.ProviderHTTPError(
                f"POST /queues answered without a queue id: {response.text[:200]!r}", provider=PROVIDER,
                response=response,
            )
        return queue.id

    result: str = await _retrying(ctx, send)
    return result


@attrs.frozen
class _QueueId:
    id: str | None = None


def _sync_type(ctx: WatchContext) -> str | None:
    value = ctx.param("type")
    if value is None or value == "":
        return None
    text = str(value).strip().upper()
    if text not in SYNC_TYPES:
        raise tidings.ConfigurationError(
            f"--param type must be ALL or LIST_ACCOUNTS, not {value!r}", provider=PROVIDER
        )
    return text


async def _trigger_one(ctx: WatchContext, connection_id: str, sync_type: str | None) -> None:
    where = str(ctx.param("type_in") or "both").lower()
    if where not in ("query", "body", "both"):
        raise tidings.ConfigurationError("--param type_in must be query, body or both", provider=PROVIDER)
    params = {"type": sync_type} if sync_type and where in ("query", "both") else None
    body = {"type": sync_type} if sync_type and where in ("body", "both") else None
    path = f"connections/{quote(connection_id, safe='')}/synchronize"

    async def send(attempt: int) -> None:
        response = await ctx.http.request("POST", path, params=params, json=body, check_status=False)
        if response.status_code == 409 and attempt > 1:
            return  # our earlier attempt started it; its answer was lost on the way
        ctx.http.raise_for_status(response)

    await _retrying(ctx, send)


async def _trigger_all(ctx: WatchContext) -> list[str]:
    async def send(_: int) -> list[str]:
        response = await ctx.http.request("POST", "connections/synchronize")
        body = ctx.http.json(response)
        links = body.get("connection_links") if isinstance(body, Mapping) else None
        if not isinstance(links, list):
            raise tidings.ProviderHTTPError(
                f"POST /connections/synchronize answered without connection_links: {response.text[:200]!r}",
                provider=PROVIDER,
                response=response,
            )
        return [c for c in (connection_id_from_link(link) for link in links) if c]

    found: list[str] = await _retrying(ctx, send)
    return found


@hookimpl
async def start(ctx: WatchContext) -> list[Stream]:
    connection_ids = [str(c).strip() for c in ctx.param_list("connection_id") if str(c).strip()]
    queue_id = ctx.param("queue_id")
    queue_id = str(queue_id).strip() if queue_id not in (None, "") else None
    trigger = _flag(ctx.param("trigger"), queue_id is None, "trigger")
    sync_type = _sync_type(ctx)
    everything = any(c.lower() == "all" for c in connection_ids)
    if not connection_ids:
        raise tidings.ConfigurationError(
            "say which connection to follow: --param connection_id=ID (repeatable) or connection_id=all",
            provider=PROVIDER,
        )
    if everything and len(connection_ids) > 1:
        raise tidings.ConfigurationError("connection_id=all cannot be mixed with connection ids", provider=PROVIDER)
    if everything and not trigger:
        raise tidings.ConfigurationError(
            "connection_id=all needs the sync to be triggered (its answer names the connections); "
            "with queue_id, name the connections to wait for",
            provider=PROVIDER,
        )
    if everything and sync_type is not None:
        raise tidings.ConfigurationError(
            "--param type applies to the sync of one connection, not to connection_id=all", provider=PROVIDER
        )
    if queue_id is None:
        queue_id = await _subscribe(ctx)  # before the sync: events only reach queues subscribed earlier
    if everything:
        connection_ids = await _trigger_all(ctx)
    elif trigger:
        for connection_id in connection_ids:
            await _trigger_one(ctx, connection_id, sync_type)
    subjects = frozenset(connection_ids)
    data = {"queue_id": queue_id, "connections": sorted(subjects), "type": sync_type, "triggered": trigger}
    return [Stream(key=queue_id, subjects=subjects, data=data)]


# -- following the queue ---------------------------------------------------------


@attrs.frozen
class _PageMemo:
    records: tuple[Any, ...]
    index: Mapping[str, int]


# the records of the page in progress, per watch session and stream, for ``checkpoint``
_pages: weakref.WeakKeyDictionary[Any, dict[str, _PageMemo]] = weakref.WeakKeyDictionary()


@hookimpl
async def fetch_page(ctx: WatchContext, cursor: QueueCursor) -> Page:
    queue_id = str(ctx.stream.data.get("queue_id") or ctx.stream.key)
    response = await ctx.http.request("GET", f"queues/{quote(queue_id, safe='')}")
    try:
        records = parse_queue_body(response.content)
    except tidings.ParseError as exc:
        raise tidings.TransientError(f"{exc.message}; retrying", provider=PROVIDER, url=response.request.url) from exc
    fresh, _newest, prints, news = select_new(records, cursor)
    memo = _PageMemo(tuple(fresh), {str(r.get("id")): i for i, r in enumerate(fresh) if isinstance(r, Mapping)})
    _pages.setdefault(ctx.http, {})[ctx.stream.key] = memo
    if not news:
        return Page(records=())
    bad = tuple(n for r in fresh if (n := event_number(r)) is not None and not _parses(ctx, r))

    def advance(running: QueueCursor) -> QueueCursor:
        # every record of the page was delivered (checkpoint marked it done) or set aside
        running = add_done(running, bad)
        kept = (*running.unplaced, *prints)[-KEPT:] if prints else running.unplaced
        return attrs.evolve(running, pending=(), unplaced=kept)

    # a destructive queue may hold more than one answer gives: read again at once
    return Page(records=fresh, more=True, advance=advance)


def _parses(ctx: WatchContext, record: Any) -> bool:
    try:
        parse_event(ctx=ctx, record=record)
    except tidings.ParseError:
        return False
    return True


@hookimpl
def parse_event(ctx: WatchContext, record: Any) -> Event:
    tidings.require(record, ("id", "event_type", "creation_date", "resource"), provider=PROVIDER, id_field="id")
    event_id = str(record["id"])
    resource = record["resource"]
    if not isinstance(resource, Mapping):
        raise tidings.ParseError("resource is not an object", provider=PROVIDER, record_id=event_id)
    try:
        created = record["creation_date"]
        if isinstance(created, str) and created.strip().lstrip("-").replace(".", "", 1).isdigit():
            created = float(created)  # epoch seconds sent as text
        when = tidings.parse_time(created)
    except (ValueError, OverflowError, OSError) as exc:
        raise tidings.ParseError(f"bad creation_date: {exc}", provider=PROVIDER, record_id=event_id) from None
    status = resource.get("status")
    return Event.make(
        provider=PROVIDER,
        id=event_id,
        subject=connection_of(record, ctx.stream.subjects),
        type=str(record["event_type"]),
        status=None if status is None else str(status),
        occurred_at=when,
        raw=record,
        record_type=QueueEvent,
    )


@hookimpl
def checkpoint(ctx: WatchContext, cursor: QueueCursor, event: Event) -> QueueCursor:
    number = event_number(event.raw)
    if number is not None:
        cursor = add_done(cursor, (number,))
    pending = cursor.pending
    memo = _pages.get(ctx.http, {}).get(ctx.stream.key)
    if memo is not None and event.id in memo.index:
        pending = memo.records[memo.index[event.id] + 1 :]
    return attrs.evolve(cursor, pending=pending)


@hookimpl
def is_terminal(ctx: WatchContext, event: Event) -> bool:
    if event.type == "AUTH_FAILED":
        return _flag(ctx.param("end_on_auth_failed"), True, "end_on_auth_failed")
    return event.type in TERMINAL_TYPES

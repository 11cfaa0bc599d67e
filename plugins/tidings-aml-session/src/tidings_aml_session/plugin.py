"""The ``aml-session`` provider: start BankID AML organisation sessions and follow them to their end.

One stream per session (key and only subject: the ``sessionId``). Each poll of
``GET /organization/session/{sessionId}`` turns the status into events with
deterministic ids (``<sessionId>:JsonDataReady``, ``<sessionId>:ReportReady:<entity>``,
``<sessionId>:AllDone``, ``<sessionId>:Failed``), so the core's de-duplication
delivers each exactly once however often it is seen. A webhook only makes its
session's stream poll at once: a ``ReportReady`` webhook does not name its
report, and polling keeps the order (ready events before ``AllDone``) whether
webhooks arrive on time, late, twice or never.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import attrs
import httpx
import tidings
from tidings import Event, Page, Param, ProviderInfo, Push, Stream, hookimpl

from tidings_aml_session._session import (
    COUNTRIES,
    PROVIDER,
    Paths,
    entity_states,
    fetch_state,
    save_json,
    save_report,
    start_session,
    state_records,
    webhooks_field,
)
from tidings_aml_session.emulator import AmlSessionEmulator
from tidings_aml_session.models import (
    EVENT_TYPES,
    JSON_DATA_READY,
    REPORT_READY,
    TERMINAL_TYPES,
    SessionCursor,
    SessionEvent,
    SessionState,
)

DEFAULT_BASE_URL = "https://aml.bankidapis.no"
DEFAULT_SCOPE = "aml_organization/basic"

PARAMS = (
    Param("country", f"the organisation's country: {', '.join(COUNTRIES)} (POST /organization/session/{{country}})",
          work=True),
    Param("identifier", "organisation number or DUNS number; repeat for a batch (one session each)", repeatable=True,
          work=True),
    Param("session_id", "follow an existing session instead of starting one (repeatable)", repeatable=True, work=True),
    Param("nationality", "the request's nationality value (default: the country upper-cased, e.g. NO)"),
    Param("expands", "data sets to add to the JSON result (comma-separated or repeated)", repeatable=True),
    Param("reports", "PDF reports to produce (comma-separated or repeated)", repeatable=True),
    Param("save_json", "directory: save the JSON result there when JsonDataReady is delivered"),
    Param("save_reports", "directory: save each PDF report there when its ReportReady is delivered"),
    Param("webhook_url", "URL sent in the session request's webhooks field (default: the run's receiver, "
          "tidings follow --webhook-listen / --webhook-url)"),
    Param("webhook_events", "webhook statuses to ask for (default: all four; comma-separated)", repeatable=True),
    Param("client_id", "OIDC client id (client credentials; with client_secret and token_url)"),
    Param("client_secret", "OIDC client secret"),
    Param("token_url", "the OIDC provider's token endpoint"),
    Param("scope", f"token scopes, space-separated (default {DEFAULT_SCOPE}; add aml_organization/OFAC)"),
    Param("session_path", "[ours] status path (default organization/session/{sessionId})"),
    Param("json_path", "[ours] JSON result path (default organization/session/{sessionId}/json)"),
    Param("report_path", "[ours] report path (default organization/session/{sessionId}/reports/{name})"),
    Param("json_entity", "[ours] the result entity holding the JSON data set (default jsonData)"),
)


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        kind="tracker",
        description="BankID AML organisation sessions: JSON data and PDF reports, by webhook and polling",
        cursor_type=SessionCursor,
        params=PARAMS,
        emulator=AmlSessionEmulator,
        default_base_url=DEFAULT_BASE_URL,
    )


def _last(params: Mapping[str, Any], name: str) -> str | None:
    """``tidings.param``, with an empty value taken as absent (``--param scope=`` keeps the default)."""
    value = tidings.param(params, name)
    return None if value in (None, "") else str(value)


@hookimpl
def make_auth(token: str | None, params: Mapping[str, Any]) -> httpx.Auth | None:
    """OIDC client credentials when ``client_id``/``client_secret``/``token_url`` are given, else Bearer."""
    client_id, secret, token_url = (_last(params, n) for n in ("client_id", "client_secret", "token_url"))
    if client_id and secret and token_url:
        return tidings.OAuth2ClientCredentials(
            token_url, client_id, secret, scope=_last(params, "scope") or DEFAULT_SCOPE, form=True
        )
    if client_id or secret or token_url:
        raise tidings.ConfigurationError(
            "client credentials need all of client_id, client_secret and token_url", provider=PROVIDER
        )
    return None


def _split(ctx: tidings.WatchContext, name: str) -> list[str]:
    return [part.strip() for value in ctx.param_list(name) for part in str(value).split(",") if part.strip()]


# -- starting sessions ------------------------------------------------------


async def _start_one(ctx: tidings.WatchContext, identifier: str, webhooks: Any) -> str:
    """POST one session, retried on transient faults with the watch's own backoff."""

    async def post() -> str:
        created = await start_session(
            ctx,
            str(ctx.param("country", required=True)),
            identifier,
            nationality=ctx.param("nationality"),
            expands=_split(ctx, "expands"),
            reports=_split(ctx, "reports"),
            webhooks=webhooks,
            paths=Paths.from_params(ctx.params),
        )
        return created.session_id

    session_id: str = await ctx.retry(post)
    return session_id


@hookimpl
async def start(ctx: tidings.WatchContext) -> list[Stream]:
    """POST one session per ``identifier`` (at once, bounded by the per-host limit), or follow ``session_id``s."""
    identifiers = [str(i) for i in ctx.param_list("identifier")]
    existing = [str(s) for s in ctx.param_list("session_id")]
    if not identifiers and not existing:
        raise tidings.ConfigurationError(
            "nothing to follow: add --param country=no --param identifier=NUMBER, or --param session_id=ID",
            provider=PROVIDER,
        )
    url = ctx.param("webhook_url") or ctx.webhook_url
    webhooks = webhooks_field(url, _split(ctx, "webhook_events") or EVENT_TYPES) if url else None
    started: list[str | None] = [None] * len(identifiers)

    async def one(i: int, identifier: str) -> None:
        started[i] = await _start_one(ctx, identifier, webhooks)

    if identifiers:
        ctx.param("country", required=True)
        try:
            async with anyio.create_task_group() as tg:
                for i, identifier in enumerate(identifiers):
                    tg.start_soon(one, i, identifier)
        except BaseExceptionGroup as group:
            first: BaseException = group
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
    pairs: list[tuple[str | None, str | None]] = [*zip(started, identifiers, strict=True)]
    pairs += [(s, None) for s in existing]
    streams: list[Stream] = []
    for session_id, org in pairs:
        assert session_id is not None
        data = {"sessionId": session_id, **({"identifier": org} if org else {})}
        streams.append(Stream(key=session_id, subjects=frozenset({session_id}), data=data))
    return streams


# -- following a session ----------------------------------------------------


@hookimpl
def initial_cursor() -> SessionCursor:
    return SessionCursor()


def event_id(session_id: str, status: str, entity: str | None = None) -> str:
    """The deterministic id of a session event (the de-duplication key)."""
    return f"{session_id}:{status}:{entity}" if status == REPORT_READY else f"{session_id}:{status}"


@hookimpl
async def fetch_page(ctx: tidings.WatchContext, cursor: SessionCursor) -> Page:
    """Poll the session; the READY entities and the end not yet delivered, in order."""
    session_id = ctx.stream.key
    paths = Paths.from_params(ctx.params)
    _, raw = await fetch_state(ctx, session_id, paths=paths)
    done = set(cursor.delivered)
    records = [
        r
        for r in state_records(session_id, raw, json_entity=paths.json_entity)
        if event_id(session_id, r["status"], r.get("entity")) not in done
    ]
    json_dir, report_dir = ctx.param("save_json"), ctx.param("save_reports")
    for record in records:
        if record["status"] == JSON_DATA_READY and json_dir:
            saved = await save_json(ctx, session_id, json_dir, paths=paths, retry_if_not_ready=True)
            record["savedTo"] = str(saved)
        elif record["status"] == REPORT_READY and report_dir:
            saved = await save_report(
                ctx, session_id, record["entity"], report_dir, paths=paths, retry_if_not_ready=True
            )
            record["savedTo"] = str(saved)
    return Page(records=records)


@hookimpl
def parse_event(record: Any) -> Event:
    tidings.require(record, ("sessionId", "status"), provider=PROVIDER)
    session_id, status = str(record["sessionId"]), record["status"]
    if status not in EVENT_TYPES:
        raise tidings.ParseError(f"unknown session event status {status!r}", provider=PROVIDER, record_id=session_id)
    entity = record.get("entity")
    if status == REPORT_READY and not entity:
        raise tidings.ParseError("ReportReady without its entity", provider=PROVIDER, record_id=session_id)
    rid = event_id(session_id, status, entity)
    try:
        when = tidings.parse_time(record["timestamp"]) if record.get("timestamp") else datetime.now(UTC)
    except ValueError as exc:
        raise tidings.ParseError(f"bad timestamp: {exc}", provider=PROVIDER, record_id=rid) from None
    session = record.get("session")
    if not isinstance(session, Mapping):
        session = None
    session_status = session.get("status") if session is not None else None
    typed = SessionEvent(
        session_id=session_id,
        status=status,
        entity=str(entity) if entity else None,
        timestamp=when,
        session=None
        if session is None
        else SessionState(session_id=session_id, status=str(session_status or ""), results=entity_states(session)),
        saved_to=str(record["savedTo"]) if record.get("savedTo") else None,
    )
    return Event.make(
        provider=PROVIDER,
        id=rid,
        subject=session_id,
        type=status,
        status=str(session_status) if session_status else None,
        occurred_at=when,
        raw=session if session is not None else record,  # the status body exactly as the server sent it
        terminal=status in TERMINAL_TYPES,
        record=typed,
    )


@hookimpl
def checkpoint(cursor: SessionCursor, event: Event) -> SessionCursor:
    if event.id in cursor.delivered:
        return cursor
    return attrs.evolve(cursor, delivered=(*cursor.delivered, event.id))


@hookimpl
def is_terminal(event: Event) -> bool:
    return event.type in TERMINAL_TYPES


@hookimpl
def parse_webhook(headers: Mapping[str, str], body: bytes) -> Sequence[Push]:
    """A verified webhook makes its session's stream poll at once (it never carries the event itself).

    :raises tidings.ParseError: the body is not ``{"sessionId", "status", …}`` (answered 400).
    """
    try:
        data = json.loads(body)
    except ValueError:
        raise tidings.ParseError("the webhook body is not JSON", provider=PROVIDER) from None
    tidings.require(data, ("sessionId", "status"), provider=PROVIDER)
    return [Push(stream=str(data["sessionId"]))]

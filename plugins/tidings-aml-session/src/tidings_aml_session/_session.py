"""The AML session API as plain async functions: start, poll, fetch the results.

Every function takes where to send the request from: a running
:class:`tidings.Watch`, a hook's :class:`tidings.WatchContext`, or a
:class:`tidings.HTTP` client of your own. Paths are [ours] where the documents
do not give them; :class:`Paths` makes each one configurable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import anyio
import attrs
import tidings

from tidings_aml_session.models import (
    ALL_DONE,
    FAILED,
    JSON_DATA_READY,
    REPORT_READY,
    OrganizationResult,
    SessionCreated,
    SessionState,
)

__all__ = [
    "COUNTRIES",
    "Paths",
    "entity_states",
    "fetch_json",
    "fetch_report",
    "fetch_state",
    "save_json",
    "save_report",
    "start_session",
    "state_records",
    "webhooks_field",
]

PROVIDER = "aml-session"
#: The session endpoints the documents give: ``POST /organization/session/{no|se|fi}``.
COUNTRIES = ("no", "se", "fi")

HTTPSource: TypeAlias = "tidings.HTTP | tidings.WatchContext | tidings.Watch"


@attrs.frozen(slots=True)
class Paths:
    """Where things are, relative to the base URL (``{country}``, ``{sessionId}``, ``{name}`` filled in).

    ``start`` is documented; the others are [ours] and can be changed with
    ``--param session_path=…``, ``json_path=…``, ``report_path=…``.
    ``json_entity`` is the result entity that holds the JSON data set.
    """

    start: str = "organization/session/{country}"
    session: str = "organization/session/{sessionId}"
    json: str = "organization/session/{sessionId}/json"
    report: str = "organization/session/{sessionId}/reports/{name}"
    json_entity: str = "jsonData"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Paths:
        def last(name: str, default: str) -> str:
            value = params.get(name)
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else None
            return str(value) if value else default

        base = cls()
        return cls(
            start=last("start_path", base.start),
            session=last("session_path", base.session),
            json=last("json_path", base.json),
            report=last("report_path", base.report),
            json_entity=last("json_entity", base.json_entity),
        )


def _http(source: HTTPSource) -> tidings.HTTP:
    if isinstance(source, tidings.HTTP):
        return source
    http = source.http
    if http is None:
        raise tidings.ConfigurationError("the watch is not running: call this from a handler", provider=PROVIDER)
    return http


def _quote(value: str) -> str:
    """A path segment: refuse anything that could leave the segment."""
    if not value or "/" in value or "\\" in value or value in (".", "..") or "?" in value or "#" in value:
        raise tidings.ConfigurationError(f"not a valid path segment: {value!r}", provider=PROVIDER)
    return value


async def start_session(
    source: HTTPSource,
    country: str,
    identifier: str,
    *,
    nationality: str | None = None,
    expands: Sequence[str] = (),
    reports: Sequence[str] = (),
    webhooks: Any = None,
    paths: Paths = Paths(),
) -> SessionCreated:
    """``POST /organization/session/{country}``: start a session for one organisation.

    :param country: ``no``, ``se`` or ``fi``.
    :param identifier: an organisation number or a DUNS number.
    :param nationality: sent as ``nationality`` (default: the country upper-cased, [ours]).
    :param webhooks: sent as ``webhooks`` when given (see :func:`webhooks_field`).
    :raises tidings.ConfigurationError: for a country the API has no endpoint for.
    """
    country = country.strip().lower()
    if country not in COUNTRIES:
        raise tidings.ConfigurationError(
            f"unknown country {country!r}: use one of {', '.join(COUNTRIES)}", provider=PROVIDER
        )
    body: dict[str, Any] = {"identifier": identifier, "nationality": nationality or country.upper()}
    if expands:
        body["expands"] = list(expands)
    if reports:
        body["reports"] = list(reports)
    if webhooks:
        body["webhooks"] = webhooks
    http = _http(source)
    response = await http.request("POST", paths.start.format(country=country), json=body)
    data = http.json(response)
    if not isinstance(data, Mapping) or not data.get("sessionId"):
        raise tidings.ProviderError(
            "the session was not started: the answer has no sessionId", provider=PROVIDER, response=response
        )
    return SessionCreated(session_id=str(data["sessionId"]))


async def fetch_state(source: HTTPSource, session_id: str, *, paths: Paths = Paths()) -> tuple[SessionState, Any]:
    """``GET /organization/session/{sessionId}``: the session's status; returns the record and the raw JSON."""
    http = _http(source)
    response = await http.request("GET", paths.session.format(sessionId=_quote(session_id)), check_status=False)
    if response.status_code == 404:
        raise tidings.ProviderHTTPError(
            f"session {session_id!r} is unknown to the provider (HTTP 404): check the session id",
            provider=PROVIDER,
            response=response,
        )
    http.raise_for_status(response)
    raw = http.json(response)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("status"), str):
        raise tidings.TransientError(
            "the session status has no 'status': retrying", provider=PROVIDER, url=response.request.url
        )
    state = SessionState(
        session_id=str(raw.get("sessionId") or session_id), status=raw["status"], results=entity_states(raw)
    )
    return state, raw


def entity_states(raw: Mapping[str, Any]) -> dict[str, str]:
    """``results`` as entity -> state, in the server's order.

    The [ours] shape is ``{"<entity>": "<STATE>"}``; a value that is an object
    with a ``status``/``state`` (``{"jsonData": {"status": "READY", …}}``) and a
    list of ``{"name"|"entity"|"type", "status"|"state"}`` objects are read too.
    """
    results = raw.get("results")

    def state_of(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            inner = value.get("status", value.get("state"))
            return inner if isinstance(inner, str) else None
        return None

    out: dict[str, str] = {}
    if isinstance(results, Mapping):
        for name, value in results.items():
            state = state_of(value)
            if state is not None:
                out[str(name)] = state
    elif isinstance(results, list):
        for item in results:
            if isinstance(item, Mapping):
                name = item.get("name", item.get("entity", item.get("type")))
                state = state_of(item)
                if isinstance(name, str) and state is not None:
                    out[name] = state
    return out


_JSON_NAMES = frozenset({"jsondata", "json", "jsonresult"})


def json_entity_of(names: Sequence[str], configured: str = "jsonData") -> str | None:
    """Which result entity holds the JSON data set: ``configured`` if present, else one named like it.

    ``jsonData`` is [ours]; a server calling it ``json``, ``json_data``, ``JSON-DATA``
    or ``JsonData`` is understood as well (case, ``-`` and ``_`` ignored).
    """
    if configured in names:
        return configured
    wanted = {_norm(configured), *_JSON_NAMES}
    return next((name for name in names if _norm(name) in wanted), None)


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _is(value: str, *names: str) -> bool:
    return value.strip().upper().replace("-", "_") in names


def state_records(
    session_id: str, raw: Mapping[str, Any], *, json_entity: str = "jsonData", observed_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The events a session status stands for, as records for ``parse_event``, in order.

    ``JsonDataReady`` first (if the JSON entity is READY), then ``ReportReady``
    per other READY entity in the server's order, then ``AllDone`` or
    ``Failed`` when the session is over: a terminal event always comes after the
    ready events of the same poll.
    """
    stamp = tidings.format_time(observed_at or datetime.now(UTC))
    results = entity_states(raw)
    records: list[dict[str, Any]] = []

    def add(status: str, entity: str | None) -> None:
        record: dict[str, Any] = {"sessionId": session_id, "status": status, "timestamp": stamp, "session": raw}
        if entity is not None:
            record["entity"] = entity
        records.append(record)

    json_name = json_entity_of(list(results), json_entity)
    ready = [name for name, value in results.items() if _is(value, "READY", "DONE", "COMPLETED")]
    if json_name in ready:
        add(JSON_DATA_READY, json_name)
    for name in ready:
        if name != json_name:
            add(REPORT_READY, name)
    status = str(raw.get("status") or "")
    if _is(status, "ALL_DONE", "ALLDONE", "DONE"):
        add(ALL_DONE, None)
    elif _is(status, "FAILED", "CANCELLED", "CANCELED"):
        add(FAILED, None)
    return records


def organization(data: Any) -> OrganizationResult:
    """The typed organisation result from the JSON data set (tolerant of missing parts)."""
    if not isinstance(data, Mapping):
        raise tidings.ParseError("the JSON result is not an object", provider=PROVIDER)
    key = data.get("keyInformation")
    info = key if isinstance(key, Mapping) else data

    def text(*names: str) -> str | None:
        for name in names:
            value = info.get(name)
            if value is not None:
                return str(value)
        return None

    return OrganizationResult(
        name=text("name", "companyName"),
        organization_number=text("organizationNumber", "orgNumber"),
        duns_number=text("dunsNumber", "duns"),
        country=text("country", "countryCode"),
        data=dict(data),
    )


async def _get_result(http: tidings.HTTP, path: str, *, retry_if_not_ready: bool = False) -> Any:
    """GET a result; with ``retry_if_not_ready``, ``409 Conflict`` (not ready yet, though the
    status said READY) is a :class:`tidings.TransientError`, else a final ``ProviderHTTPError``."""
    response = await http.request("GET", path, check_status=False)
    if response.status_code == 409 and retry_if_not_ready:
        raise tidings.TransientError(
            "the result is not ready yet (HTTP 409): retrying", provider=PROVIDER, url=response.request.url
        )
    http.raise_for_status(response)
    return response


async def fetch_json(source: HTTPSource, session_id: str, *, paths: Paths = Paths()) -> OrganizationResult:
    """``GET …/session/{sessionId}/json`` (after ``JsonDataReady``): the organisation's data set."""
    http = _http(source)
    response = await _get_result(http, paths.json.format(sessionId=_quote(session_id)))
    return organization(http.json(response))


async def fetch_report(
    source: HTTPSource, session_id: str, name: str, *, paths: Paths = Paths(), retry_if_not_ready: bool = False
) -> bytes:
    """``GET …/session/{sessionId}/reports/{name}`` (after its ``ReportReady``): the PDF bytes.

    :param retry_if_not_ready: raise ``TransientError`` on ``409`` (the watch's own downloads retry it).
    """
    http = _http(source)
    path = paths.report.format(sessionId=_quote(session_id), name=_quote(name))
    response = await _get_result(http, path, retry_if_not_ready=retry_if_not_ready)
    return bytes(response.content)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _filename(*parts: str) -> str:
    name = "-".join(_UNSAFE.sub("_", p) for p in parts).lstrip(".")
    return name or "unnamed"


async def _write(path: Path, content: bytes) -> Path:
    target = anyio.Path(path)
    await target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    await partial.write_bytes(content)
    await partial.replace(target)  # atomic: a reader never sees half a file
    return path


async def save_report(
    source: HTTPSource,
    session_id: str,
    name: str,
    directory: str | Path,
    *,
    paths: Paths = Paths(),
    retry_if_not_ready: bool = False,
) -> Path:
    """Download one report and write it to ``directory/<sessionId>-<name>.pdf``; returns the path."""
    content = await fetch_report(source, session_id, name, paths=paths, retry_if_not_ready=retry_if_not_ready)
    return await _write(Path(directory) / (_filename(session_id, name) + ".pdf"), content)


async def save_json(
    source: HTTPSource,
    session_id: str,
    directory: str | Path,
    *,
    paths: Paths = Paths(),
    retry_if_not_ready: bool = False,
) -> Path:
    """Download the JSON data set and write it, as received, to ``directory/<sessionId>.json``."""
    http = _http(source)
    path = paths.json.format(sessionId=_quote(session_id))
    response = await _get_result(http, path, retry_if_not_ready=retry_if_not_ready)
    http.json(response)  # a truncated body is transient: never save half a document
    return await _write(Path(directory) / (_filename(session_id) + ".json"), response.content)


def webhooks_field(url: str, events: Sequence[str] = (JSON_DATA_READY, REPORT_READY, ALL_DONE, FAILED)) -> Any:
    """The session request's ``webhooks`` value [ours]: ``{"url": URL, "events": [webhook statuses]}``."""
    return {"url": url, "events": list(events)}

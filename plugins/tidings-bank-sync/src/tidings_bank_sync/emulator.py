"""An emulator of the bank synchronisation API: connections, syncs and event queues.

Routes (under ``/v2.1``): ``POST /queues`` (201 ``{"id"}``), ``GET /queues/{id}``
(a JSON array of events), ``POST /connections/{id}/synchronize`` (``type`` in the
query or a JSON body; 204), ``POST /connections/synchronize`` (200
``{"connection_links"}``); and ``POST /token`` at the root (client credentials).

A triggered sync plans its events over emulated time; they are put on the queues
that were subscribed before the trigger when the clock reaches them, each with the
next numeric-string id. A ``LIST_ACCOUNTS`` sync ends its first phase with one
``LIST_ACCOUNTS_SUCCESS`` per channel (listing the accounts), then goes on as an
``ALL`` sync; every sync ends with ``SYNC_ALL_SUCCESS`` whose resource status is the
outcome. ``AUTH_FAILED`` is a channel event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tidings.sandbox import Emulator, Scenario

__all__ = ["OUTCOMES", "BankSyncEmulator", "EmulatedConnection"]

OUTCOMES = ("SUCCESS", "FAILED", "PARTIAL_SUCCESS", "AUTH_FAILED")
ChannelShape = Literal["channel", "connection", "link", "nested"]

_CHANNEL_STATUS = {
    "SUCCESS": ("SUCCESS", "EMPTY"),
    "PARTIAL_SUCCESS": ("SUCCESS", "CHALLENGE_REQUIRED"),
    "FAILED": ("USER_ACTION_REQUIRED", "TOKEN_EXPIRED"),
    "AUTH_FAILED": ("TOKEN_EXPIRED", "TOKEN_EXPIRED"),
}


@attrs.define
class EmulatedConnection:
    """A bank connection of the emulated user."""

    id: str
    outcome: str = "SUCCESS"
    name: str = "WBX Test Bank"
    provider_id: str = "200"
    channels: tuple[str, ...] = ("8700", "8701")
    accounts: tuple[dict[str, Any], ...] = ()
    busy_until: float = -1.0


@attrs.define
class _Planned:
    due: float
    seq: int
    event_type: str
    resource_type: str
    resource: dict[str, Any]
    queues: tuple[str, ...]


class BankSyncEmulator(Emulator):
    """The bank sync API, with switches for what a real server may do differently.

    :param destructive: reading a queue removes the events it returns (default: it keeps them).
    :param max_batch: a destructive read returns at most this many events (default: all).
    :param newest_first: the queue lists its events newest first.
    :param channel_shape: how a channel event names its connection: ``channel``
        (``connection_id`` in a channel resource), ``link`` (``"connection": "/connections/ID"``),
        ``nested`` (``"connection": {"id": ...}``) or ``connection`` (the connection is the resource).
    :param step: emulated seconds between the events of one sync (jittered).
    :param first_event_id: the first event id (7 makes the ids cross from one digit to two).
    :param end_after_auth_failed: after ``AUTH_FAILED`` the sync still ends with a FAILED ``SYNC_ALL_SUCCESS``.
    :param on_busy: a trigger while the connection syncs: ``ignore`` (204) or ``conflict`` (409).
    """

    provider = "bank-sync"
    base_path = "/v2.1"
    client_id = "sandbox-client"
    client_secret = "sandbox-secret"

    def __init__(
        self,
        *,
        destructive: bool = False,
        max_batch: int | None = None,
        newest_first: bool = False,
        channel_shape: ChannelShape = "channel",
        step: float = 0.5,
        first_event_id: int = 7,
        end_after_auth_failed: bool = True,
        on_busy: Literal["ignore", "conflict"] = "ignore",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destructive = destructive
        self.max_batch = max_batch
        self.newest_first = newest_first
        self.channel_shape = channel_shape
        self.step = step
        self.next_event_id = first_event_id
        self.end_after_auth_failed = end_after_auth_failed
        self.on_busy = on_busy
        self.connections: dict[str, EmulatedConnection] = {}
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.delivered: dict[str, list[str]] = {}  # queue id -> every event id put on it
        self.syncs: list[tuple[str, str]] = []  # (connection id, type) per sync started
        self._planned: list[_Planned] = []
        self._seq = 0
        self._epoch0 = self.clock.now().timestamp() - self.clock.elapsed()

    # -- set-up --------------------------------------------------------------

    def add_connection(
        self, connection_id: str | None = None, outcome: str = "SUCCESS", *, channels: Sequence[str] = ("8700", "8701"),
        accounts: int = 2,
    ) -> str:
        """Add a connection whose syncs end with ``outcome`` (one of :data:`OUTCOMES`)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        cid = connection_id or str(1000 + len(self.connections) * 7 + self.random.randrange(7))
        listed = tuple(
            {"id": f"{cid}-{i}", "name": f"Account {i}", "type": "CHECKINGS", "currency": "EUR",
             "iban": f"FR76{cid:0>6}{i:0>4}", "status": "ACTIVE"}
            for i in range(1, accounts + 1)
        )
        self.connections[cid] = EmulatedConnection(id=cid, outcome=outcome, channels=tuple(channels), accounts=listed)
        return cid

    def scenario(self, size: int = 20) -> Scenario:
        """Connections ending in SUCCESS, PARTIAL_SUCCESS and FAILED, followed with ``connection_id=all``."""
        count = max(2, min(6, size // 6))
        outcomes = ("SUCCESS", "PARTIAL_SUCCESS", "FAILED")
        for i in range(count):
            self.add_connection(outcome=outcomes[i % len(outcomes)])
        return Scenario(params={"connection_id": "all"})

    def expected_ids(self, scenario: Scenario) -> frozenset[str]:
        """Every event put on any queue (the scenario's last event is the last connection's end)."""
        self._release()
        return frozenset(i for ids in self.delivered.values() for i in ids)

    # -- time ----------------------------------------------------------------

    def _epoch(self, at: float) -> int:
        return int(self._epoch0 + at)

    def _release(self) -> None:
        """Put every planned event whose time has come on its queues, in time order."""
        now = self.clock.elapsed()
        due = sorted((p for p in self._planned if p.due <= now), key=lambda p: (p.due, p.seq))
        if not due:
            return
        self._planned = [p for p in self._planned if p.due > now]
        for planned in due:
            event: dict[str, Any] = {
                "id": str(self.next_event_id),
                "event_type": planned.event_type,
                "resource_type": planned.resource_type,
                "creation_date": self._epoch(planned.due),
                "resource": planned.resource,
            }
            self.next_event_id += 1
            for queue_id in planned.queues:
                if queue_id in self.queues:
                    self.queues[queue_id].append(event)
                    self.delivered[queue_id].append(event["id"])

    def _plan(self, at: float, event_type: str, resource_type: str, resource: dict[str, Any],
              queues: tuple[str, ...]) -> None:
        self._seq += 1
        self._planned.append(_Planned(at, self._seq, event_type, resource_type, resource, queues))

    # -- syncs -----------------------------------------------------------------

    def _connection_body(self, conn: EmulatedConnection, status: str, at: float, *, final: bool) -> dict[str, Any]:
        stamp = self._epoch(at)
        channels = []
        for i, definition in enumerate(conn.channels):
            channel: dict[str, Any] = {"channel_definition_id": definition}
            if i == 0:
                channel["expires"] = stamp + 90 * 86400
            if final:
                channel_status = _CHANNEL_STATUS[conn.outcome][min(i, 1)]
                channel["status"] = channel_status
                if channel_status in ("SUCCESS", "EMPTY"):
                    channel["last_success_date"] = stamp
                channel["last_end_date"] = stamp
            channels.append(channel)
        return {"id": conn.id, "provider_id": conn.provider_id, "name": conn.name, "channels": channels,
                "status": status, "creation_date": 0}

    def _channel_body(self, conn: EmulatedConnection, definition: str, status: str, at: float) -> tuple[str, dict]:
        if self.channel_shape == "connection":
            body = self._connection_body(conn, "RUNNING", at, final=False)
            body["channel_definition_id"] = definition
            body["channel_status"] = status
            return "CONNECTION", body
        body = {"id": f"ch-{conn.id}-{definition}", "channel_definition_id": definition, "status": status,
                "last_end_date": self._epoch(at)}
        if self.channel_shape == "channel":
            body["connection_id"] = conn.id
        elif self.channel_shape == "link":
            body["connection"] = f"/connections/{conn.id}"
        else:
            body["connection"] = {"id": conn.id, "name": conn.name}
        return "CHANNEL", body

    def start_sync(self, conn: EmulatedConnection, sync_type: str) -> None:
        """Plan the events of one sync of ``conn`` for the queues subscribed now."""
        queues = tuple(self.queues)
        self.syncs.append((conn.id, sync_type))
        t = self.clock.elapsed()

        def later() -> float:
            nonlocal t
            t += self.step * (0.5 + self.random.random())
            return t

        def phase(kind: str) -> bool:
            """One phase; False if it ended the sync (AUTH_FAILED)."""
            body = self._connection_body(conn, "RUNNING", t, final=False)
            body["sync_type"] = kind
            self._plan(later(), "SYNC_STARTED", "CONNECTION", body, queues)
            for i, definition in enumerate(conn.channels):
                if conn.outcome == "AUTH_FAILED" and i == 0:
                    at = later()
                    self._plan(at, "AUTH_FAILED", *self._channel_body(conn, definition, "TOKEN_EXPIRED", at), queues)
                    return False
                at = later()
                self._plan(at, "AUTH_SUCCESS", *self._channel_body(conn, definition, "SUCCESS", at), queues)
            for i, definition in enumerate(conn.channels):
                at = later()
                if kind == "LIST_ACCOUNTS":
                    body = self._connection_body(conn, "RUNNING", at, final=False)
                    body["channel_definition_id"] = definition
                    body["accounts"] = [dict(a, channel_definition_id=definition) for a in conn.accounts]
                    self._plan(at, "LIST_ACCOUNTS_SUCCESS", "CONNECTION", body, queues)
                else:
                    status = _CHANNEL_STATUS[conn.outcome][min(i, 1)]
                    self._plan(at, "CHANNEL_SYNC_ENDED", *self._channel_body(conn, definition, status, at), queues)
            return True

        finished = phase("LIST_ACCOUNTS") and phase("ALL") if sync_type == "LIST_ACCOUNTS" else phase("ALL")
        if finished or self.end_after_auth_failed:
            at = later()
            outcome = "FAILED" if conn.outcome == "AUTH_FAILED" else conn.outcome
            self._plan(at, "SYNC_ALL_SUCCESS", "CONNECTION", self._connection_body(conn, outcome, at, final=True),
                       queues)
        conn.busy_until = t

    # -- routes ----------------------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/v2.1/queues", self._subscribe, methods=["POST"]),
            Route("/v2.1/queues/{queue_id}", self._read_queue, methods=["GET"]),
            Route("/v2.1/connections/synchronize", self._sync_all, methods=["POST"]),
            Route("/v2.1/connections/{connection_id}/synchronize", self._sync_one, methods=["POST"]),
            Route("/token", self._token, methods=["POST"]),
        ]

    async def _subscribe(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        self._release()
        queue_id = f"q{len(self.queues) + 1}-{self.random.randrange(10**6):06d}"
        self.queues[queue_id] = []
        self.delivered[queue_id] = []
        return JSONResponse({"id": queue_id}, status_code=201)

    async def _read_queue(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        self._release()
        queue_id = request.path_params["queue_id"]
        if queue_id not in self.queues:
            return JSONResponse({"error": "queue not found"}, status_code=404)
        events = self.queues[queue_id]
        if self.destructive:
            count = len(events) if self.max_batch is None else min(self.max_batch, len(events))
            answer, self.queues[queue_id] = events[:count], events[count:]
        else:
            answer = list(events)
        if self.newest_first:
            answer.reverse()
        return JSONResponse(answer)

    async def _sync_type(self, request: Request) -> str | None:
        value = request.query_params.get("type")
        if value is None:
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return "?"
                value = body.get("type") if isinstance(body, dict) else None
        return None if value is None else str(value)

    async def _sync_one(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        self._release()
        conn = self.connections.get(request.path_params["connection_id"])
        if conn is None:
            return JSONResponse({"error": "connection not found"}, status_code=404)
        sync_type = await self._sync_type(request) or "ALL"
        if sync_type not in ("ALL", "LIST_ACCOUNTS"):
            return JSONResponse({"error": f"unknown synchronization type {sync_type!r}"}, status_code=400)
        if conn.busy_until > self.clock.elapsed():
            if self.on_busy == "conflict":
                return JSONResponse({"error": "synchronization already in progress"}, status_code=409)
            return Response(status_code=204)
        self.start_sync(conn, sync_type)
        return Response(status_code=204)

    async def _sync_all(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        self._release()
        now = self.clock.elapsed()
        for conn in self.connections.values():
            if conn.busy_until <= now:
                self.start_sync(conn, "ALL")
        return JSONResponse({"connection_links": [f"/connections/{c}" for c in self.connections]})

    async def _token(self, request: Request) -> Response:
        raw = await request.body()
        fields: dict[str, Any] = {}
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                fields = dict(json.loads(raw))
            except ValueError:
                fields = {}
        else:
            fields = dict(parse_qsl(raw.decode("utf-8", "replace")))
        ok = (
            fields.get("grant_type") == "client_credentials"
            and fields.get("client_id") == self.client_id
            and fields.get("client_secret") == self.client_secret
        )
        if not ok:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        return JSONResponse({"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"})

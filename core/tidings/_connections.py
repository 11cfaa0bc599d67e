"""An httpx transport over httpcore connections kept in a deque per origin (any anyio backend).

httpx's own pool (``httpcore.AsyncConnectionPool``) re-assigns every queued request to every
connection each time a request starts or ends, and counts the idle connections once per idle
connection: quadratic in the pool's size, milliseconds of CPU per request at 100 connections.
Here a request takes an idle connection from its origin's deque (or opens one while fewer than
``max_connections`` are in use) and gives it back when its body is closed: constant time.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpcore
import httpx

__all__ = ["ConnectionsTransport"]

Origin = tuple[bytes, bytes, int]


def _httpx_fault(exc: Exception) -> type[httpx.TransportError] | None:
    """The httpx exception httpx's own transport raises for an httpcore one (they share names)."""
    for kind in type(exc).__mro__:
        mapped = getattr(httpx, kind.__name__, None) if kind.__module__.startswith("httpcore") else None
        if isinstance(mapped, type) and issubclass(mapped, httpx.TransportError):
            return mapped
    return None


def _reraise(exc: Exception) -> None:
    mapped = _httpx_fault(exc)
    if mapped is not None:
        raise mapped(str(exc)) from exc
    raise exc


class ConnectionsTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over at most ``limits.max_connections`` httpcore connections, reused per origin.

    :param limits: ``max_connections`` (None: 100) bounds the connections in use at once; a request
        waits up to its ``pool`` timeout for one (then ``httpx.PoolTimeout``); idle connections
        close after ``keepalive_expiry``.
    :param verify: as for httpx: True (certifi), False, or an ``ssl.SSLContext``.
    """

    def __init__(self, *, limits: httpx.Limits | None = None, verify: Any = True) -> None:
        limits = limits or httpx.Limits()
        self._max = limits.max_connections or 100
        self._keepalive = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, deque[httpcore.AsyncHTTPConnection]] = {}
        self._slots: anyio.Semaphore | None = None
        self._closed = False

    async def _connection(self, origin: Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been closed by the server
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()  # expired, or closed by the server meanwhile
        scheme, host, port = origin
        if scheme == b"https" and self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        return httpcore.AsyncHTTPConnection(
            httpcore.Origin(scheme, host, port), ssl_context=self._ssl, keepalive_expiry=self._keepalive
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max)
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        wait = request.extensions.get("timeout", {}).get("pool")
        with anyio.move_on_after(wait if wait is not None else float("inf")) as scope:
            await self._slots.acquire()
        if scope.cancelled_caught:
            raise httpx.PoolTimeout(f"no connection free within {wait}s ({self._max} in use)")
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        connection: httpcore.AsyncHTTPConnection | None = None
        try:
            connection = await self._connection(origin)
            try:
                response = await connection.handle_async_request(core)
            except httpcore.ConnectionNotAvailable:  # it stopped being reusable since the check: a new one
                connection = await self._connection(origin)
                response = await connection.handle_async_request(core)
        except BaseException as exc:
            self._slots.release()
            if connection is not None:
                with anyio.CancelScope(shield=True):
                    await connection.aclose()
            if isinstance(exc, Exception):
                _reraise(exc)
            raise
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_Body(self, origin, connection, response),
            extensions=response.extensions,
        )

    def _give_back(self, origin: Origin, connection: httpcore.AsyncHTTPConnection) -> None:
        assert self._slots is not None
        self._slots.release()
        if not self._closed and connection.is_idle():
            self._idle.setdefault(origin, deque()).append(connection)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        with anyio.CancelScope(shield=True):
            for connections in idle.values():
                for connection in connections:
                    await connection.aclose()


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, pool: ConnectionsTransport, origin: Origin, connection: httpcore.AsyncHTTPConnection, response: Any
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._response = response
        self._returned = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_stream():
                yield chunk
        except Exception as exc:
            _reraise(exc)

    async def aclose(self) -> None:
        if self._returned:
            return
        self._returned = True
        try:
            with anyio.CancelScope(shield=True):
                await self._response.aclose()  # a body read to its end leaves the connection idle, else closed
        finally:
            self._pool._give_back(self._origin, self._connection)

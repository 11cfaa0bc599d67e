"""The transport under ``ctx.http``: aiohttp's connection pool on asyncio, httpcore's elsewhere.

Plugins always see an ``httpx.AsyncClient``; only what carries its requests changes. httpx's own
pool (httpcore) scans every connection on every request and every release, so under many
requests in flight it spends milliseconds of CPU per request; aiohttp's pool is a dict of deques.
:func:`default_transport` picks the fastest one that is installed and fits the event loop, with
the pool sized to the requests a watch lets in flight (``max_per_host``), and
``TIDINGS_HTTP_TRANSPORT`` overrides the choice: ``auto`` (aiohttp on asyncio when installed,
else httpcore), ``aiohttp``, ``httpcore`` (:class:`~tidings._connections.ConnectionsTransport`:
httpcore connections in a constant-time pool, any backend) or ``httpx`` (httpx's own pool).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx

from tidings._errors import ConfigurationError

__all__ = ["TRANSPORTS", "AiohttpTransport", "default_transport", "transport_name"]

TRANSPORTS = ("auto", "aiohttp", "httpcore", "httpx")
KEEPALIVE_SECONDS = 5.0  # httpx's default keep-alive expiry


def _on_asyncio() -> bool:
    asyncio = sys.modules.get("asyncio")  # not imported: not running (importing it costs ~15 ms of start-up)
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio (or no loop at all)
        return False
    return True


def _aiohttp_installed() -> bool:
    try:
        import aiohttp  # noqa: F401  (in the `aiohttp` extra)
    except ImportError:
        return False
    return True


def transport_name(choice: str | None = None) -> str:
    """The transport :func:`default_transport` would use here: ``"aiohttp"``, ``"httpcore"`` or ``"httpx"``.

    :param choice: one of :data:`TRANSPORTS`; default ``TIDINGS_HTTP_TRANSPORT``, else ``auto``.
    :raises ConfigurationError: an unknown choice, or ``aiohttp`` where it cannot run (not
        installed, or not on asyncio).
    """
    choice = (choice or os.environ.get("TIDINGS_HTTP_TRANSPORT") or "auto").strip().lower()
    if choice not in TRANSPORTS:
        raise ConfigurationError(
            f"unknown HTTP transport {choice!r} (TIDINGS_HTTP_TRANSPORT): use one of {', '.join(TRANSPORTS)}"
        )
    if choice == "aiohttp":
        if not _aiohttp_installed():
            raise ConfigurationError("the aiohttp transport needs aiohttp: pip install 'tidings[aiohttp]'")
        if not _on_asyncio():
            raise ConfigurationError("the aiohttp transport runs on asyncio only: use httpcore (or auto) on trio")
        return "aiohttp"
    if choice == "auto":
        return "aiohttp" if _on_asyncio() and _aiohttp_installed() else "httpcore"
    return choice


def default_transport(
    base_url: str, max_connections: int, choice: str | None = None
) -> httpx.AsyncBaseTransport | None:
    """A transport for a watch's own client, pooled to ``max_connections``; call it inside the event loop.

    None when the environment names a proxy for ``base_url`` (``HTTPS_PROXY`` and the like): then
    httpx's client builds its own transports and honours the proxy, as it does with no transport given.
    """
    name = transport_name(choice)
    if _proxied(base_url):
        return None
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS
    )
    if name == "aiohttp":
        return AiohttpTransport(limits=limits)
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits)
    from tidings._connections import ConnectionsTransport

    return ConnectionsTransport(limits=limits)


def _proxied(base_url: str) -> bool:
    import urllib.request  # ~10 ms of start-up: only when a watch starts

    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    if not any(proxies.get(k) for k in (url.scheme, "all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends requests through one ``aiohttp.ClientSession`` (asyncio only).

    httpx still does everything above the wire (auth flows, headers, cookies, content decoding,
    redirects, which a watch refuses); aiohttp only carries bytes: no decompression, no cookies,
    no redirects of its own. Its faults become httpx's (``ConnectError``, ``ConnectTimeout``,
    ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``), so callers cannot tell the difference.
    httpx's ``write`` timeout has no aiohttp counterpart (request bodies are small); ``pool`` and
    ``connect`` together bound getting a connection.

    :param limits: the pool: ``max_connections`` (None: no bound) and ``keepalive_expiry``.
    :param verify: as for httpx: True (certifi), False, or an ``ssl.SSLContext``.
    """

    def __init__(self, *, limits: httpx.Limits | None = None, verify: Any = True) -> None:
        import aiohttp  # in the `aiohttp` extra
        import yarl  # comes with aiohttp

        self._aiohttp = aiohttp
        self._url = yarl.URL
        self._limits = limits or httpx.Limits(max_connections=100, keepalive_expiry=KEEPALIVE_SECONDS)
        self._verify = verify
        self._session: Any = None
        self._closed = False

    def _open(self) -> Any:
        aiohttp = self._aiohttp
        if not _on_asyncio():
            raise RuntimeError("AiohttpTransport runs on asyncio only")
        if self._closed:
            raise RuntimeError("the transport is closed")
        ssl_context = httpx.create_ssl_context(verify=self._verify) if self._verify is not False else False
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or KEEPALIVE_SECONDS,
            ssl=ssl_context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes, and the body cap counts decoded bytes
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),  # httpx sends its own
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        aiohttp = self._aiohttp
        timeout = request.extensions.get("timeout", {})
        pool, connect = timeout.get("pool"), timeout.get("connect")
        body = request.content if not isinstance(request.stream, httpx.AsyncByteStream) else await request.aread()
        with _translated_faults(aiohttp):
            response = await session.request(
                request.method,
                self._url(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=None if pool is None or connect is None else pool + connect,
                    sock_connect=connect,
                    sock_read=timeout.get("read"),
                ),
            )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_AiohttpBody(response, aiohttp),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class _AiohttpBody(httpx.AsyncByteStream):
    """A response body read from aiohttp as it arrives; closing returns the connection to the pool."""

    def __init__(self, response: Any, aiohttp: Any) -> None:
        self._response = response
        self._aiohttp = aiohttp

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated_faults(self._aiohttp):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()  # read to the end: the connection is reused
        else:
            response.close()  # abandoned half-read (a body over the cap): the connection is dropped


class _translated_faults:
    """Raise aiohttp's faults as the httpx exceptions httpx's own transport raises for the same fault."""

    def __init__(self, aiohttp: Any) -> None:
        self._aiohttp = aiohttp

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or not isinstance(exc, self._aiohttp.ClientError):
            return False
        raise _httpx_fault(self._aiohttp, exc)(f"{type(exc).__name__}: {exc}") from exc


def _httpx_fault(aiohttp: Any, exc: BaseException) -> type[httpx.TransportError]:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.TimeoutException
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, DNS, TLS handshake
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError  # closed before (or during) the answer, or an answer that is not HTTP
    if isinstance(exc, aiohttp.ClientConnectionError):  # reset, broken pipe
        return httpx.ReadError
    return httpx.TransportError

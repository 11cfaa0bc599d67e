"""The HTTP client a provider gets: one host, capped bodies, faults sorted into retryable or final."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx

from tidings._errors import (
    AuthenticationError,
    ForeignHostError,
    ProviderError,
    ProviderHTTPError,
    ResponseTooLarge,
    TransientError,
    safe_url,
)

__all__ = ["HTTP", "loads_json", "parse_retry_after", "read_capped"]

_fast_loads: Callable[[bytes | str], Any] | None
try:  # the `fast` extra: decodes a large page about twice as fast as the standard library
    from msgspec.json import decode as _fast_loads
except ImportError:
    _fast_loads = None

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_DEADLINE = 300.0  # seconds for a whole request, body included: a server dripping bytes cannot stall a watch
DEFAULT_MAX_BODY = 64 * 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def loads_json(content: bytes | str) -> Any:
    """Decode a JSON document from a provider.

    msgspec decodes when installed (the ``fast`` extra); a document it refuses but the standard
    library reads (NaN, Infinity, lone surrogates, UTF-16) is read by ``json.loads``, so the
    result never depends on the extra.

    :raises ValueError: for anything that is not JSON, including a document nested too deeply
        to decode (both decoders raise ``RecursionError`` there, which is turned into this).
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(content)
        except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
            pass
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply to decode") from None


def _too_large(
    cap: int, provider: str | None, response: httpx.Response, declared: str | None = None
) -> ResponseTooLarge:
    size = f"of {declared} bytes " if declared else ""
    return ResponseTooLarge(
        f"response body {size}is over the cap of {cap} bytes; raise max_body_bytes or ask for smaller pages",
        provider=provider,
        response=response,
    )


class _Capped:
    """Collects a body's chunks, refusing more than ``cap`` bytes in all."""

    def __init__(self, response: httpx.Response, cap: int, provider: str | None) -> None:
        self.response, self.cap, self.provider = response, cap, provider
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise _too_large(cap, provider, response, declared)
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise _too_large(self.cap, self.provider, self.response)
        self.chunks.append(chunk)

    def body(self) -> bytes:
        body = b"".join(self.chunks)
        self.response._content = body
        return body


async def read_capped(response: httpx.Response, cap: int, *, provider: str | None = None) -> bytes:
    """Read a streamed response's body, decoded, refusing more than ``cap`` bytes (a gzip bomb too).

    The body is kept on the response as well, so ``response.content`` (and httpx's own ``aread``,
    which an auth flow's intermediate responses go through) use it instead of reading on.

    :raises ResponseTooLarge: the declared length or the decoded body is over the cap.
    """
    capped = _Capped(response, cap, provider)
    async for chunk in response.aiter_bytes():
        capped.add(chunk)
    return capped.body()


def read_capped_sync(response: httpx.Response, cap: int, *, provider: str | None = None) -> bytes:
    """:func:`read_capped` for a synchronous client."""
    capped = _Capped(response, cap, provider)
    for chunk in response.iter_bytes():
        capped.add(chunk)
    return capped.body()


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default port of the scheme made explicit)."""
    port = url.port
    if port is None:
        port = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(url.scheme)
    return url.scheme, url.host, port


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HTTP:
    """An ``httpx.AsyncClient`` kept to one provider host.

    :param provider: the provider name, for error messages.
    :param base_url: the configured base URL; relative paths are resolved against it
        and absolute URLs must have its scheme, host and port (or a host in ``allowed_hosts``) and
        no user info.
    :param auth: an httpx ``Auth`` (see :mod:`tidings` auth classes), or None.
    :param client: an existing client to share (it is not closed here), or None.
    :param transport: a transport for a new client (an in-process emulator), or None.
    :param max_body_bytes: a larger response body is refused with :class:`ResponseTooLarge`.
    :param deadline: seconds one request may take in all, body included (None: no limit beyond
        ``timeout``, which bounds each read); going over it is a :class:`TransientError`.
    :param allowed_hosts: more hosts absolute URLs may point at (same scheme and port as the base URL).
    :param limiter: bounds the requests in flight to this host (shared across watches).
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        auth: httpx.Auth | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        deadline: float | None = DEFAULT_DEADLINE,
        allowed_hosts: tuple[str, ...] = (),
        limiter: anyio.CapacityLimiter | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = httpx.URL(base_url.rstrip("/") + "/")
        self.auth = auth
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)
        self.max_body_bytes = max_body_bytes
        self.deadline = deadline
        self.allowed_hosts = {self.base_url.host, *allowed_hosts}
        self._scheme, _, self._port = _origin(self.base_url)
        self.limiter = limiter
        self.headers = dict(headers or {})
        self.requests_sent = 0
        self._joined: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:
        return f"HTTP(provider={self.provider!r}, base_url={safe_url(self.base_url)!r})"

    def url(self, path_or_url: str | httpx.URL) -> httpx.URL:
        """Resolve a path against the base URL; refuse a URL off the configured origin.

        The result must have the base URL's scheme and port and an allowed host, and no user
        info, whether it was given absolute or a relative path resolved to it (``//host/x``,
        ``other:x``).

        :raises ForeignHostError: the URL leaves the configured origin.
        :raises ProviderError: the text cannot be a URL (an id from the provider too long, or
            with characters no URL can carry).
        """
        text = str(path_or_url)
        joined = self._joined.get(text)
        if joined is not None:
            return joined
        try:
            url = httpx.URL(text) if "://" in text else self.base_url.join(text.lstrip("/"))
        except (httpx.InvalidURL, UnicodeError, ValueError, TypeError) as exc:
            raise ProviderError(
                f"cannot make a URL of {text[:80]!r}{'...' if len(text) > 80 else ''} "
                f"({type(exc).__name__}): an id or link from the provider that no URL can carry",
                provider=self.provider,
            ) from None
        self._check_origin(url)
        if len(self._joined) < 1024:  # httpx's URL.join is slow next to a dict lookup; a feed asks for the same few
            self._joined[text] = url
        return url

    def _check_origin(self, url: httpx.URL) -> None:
        scheme, host, port = _origin(url)
        if url.userinfo or scheme != self._scheme or port != self._port or host not in self.allowed_hosts:
            where = safe_url(url.copy_with(username=None, password=None)) if url.userinfo else str(url)
            raise ForeignHostError(
                f"refused to follow a link to {where[:200]!r}, which is not on the configured origin "
                f"{self._scheme}://{self.base_url.host}:{self._port} (scheme, host and port must match, "
                "no user info); the plugin must compute the next page itself",
                provider=self.provider,
                url=url.copy_with(username=None, password=None) if url.userinfo else url,
            )

    async def request(
        self,
        method: str,
        path_or_url: str | httpx.URL,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check_status: bool = True,
    ) -> httpx.Response:
        """Send one request and read its body (up to the cap).

        :param check_status: map 401/403, 429/5xx and other 4xx to errors (see
            :meth:`raise_for_status`); pass False to inspect an error body first.
        :raises TransientError: connect errors, timeouts, a broken connection.
        """
        url = self.url(path_or_url)
        merged = {**self.headers, **(headers or {})}
        try:
            request = self.client.build_request(
                method, url, params=params, json=json, content=content, headers=merged
            )
        except (httpx.InvalidURL, UnicodeError) as exc:
            raise ProviderError(
                f"cannot build the request ({type(exc).__name__}): a value from the provider that no URL can carry",
                provider=self.provider,
                url=url,
            ) from None
        started = time.monotonic()
        try:
            if self.limiter is not None:
                async with self.limiter:
                    response = await self._send_within_deadline(request)
            else:
                response = await self._send_within_deadline(request)
        except TimeoutError as exc:
            raise TransientError(
                f"the request took longer than its deadline of {self.deadline:g}s in all (a slow or dripping "
                "server): retrying; raise request_deadline if the provider is this slow on purpose",
                provider=self.provider,
                url=url,
            ) from exc
        except httpx.TransportError as exc:
            raise TransientError(
                f"{type(exc).__name__} after {time.monotonic() - started:.1f}s talking to the provider: "
                "retrying; check the base URL and the network if it lasts",
                provider=self.provider,
                url=url,
            ) from exc
        if check_status:
            self.raise_for_status(response)
        return response

    async def _send_within_deadline(self, request: httpx.Request) -> httpx.Response:
        if self.deadline is None:
            return await self._send(request)
        with anyio.fail_after(self.deadline):
            return await self._send(request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        self.requests_sent += 1
        response = await self.client.send(request, auth=self.auth or httpx.USE_CLIENT_DEFAULT, stream=True)
        try:
            content = await read_capped(response, self.max_body_bytes, provider=self.provider)
        finally:
            await response.aclose()
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k not in ("content-encoding", "content-length")
        ]
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)

    def raise_for_status(self, response: httpx.Response) -> None:
        """401/403 -> AuthenticationError; 408/425/429/5xx -> TransientError; other 4xx -> ProviderHTTPError."""
        status = response.status_code
        if status < 400:
            return
        if status in (401, 403):
            raise AuthenticationError(
                f"the provider refused the credentials (HTTP {status}): check the token",
                provider=self.provider,
                response=response,
            )
        if status in RETRYABLE_STATUS:
            raise TransientError(
                f"HTTP {status} from the provider: retrying with backoff",
                provider=self.provider,
                url=response.request.url,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                status_code=status,
            )
        raise ProviderHTTPError(
            f"HTTP {status} from the provider: {response.text[:200]!r}",
            provider=self.provider,
            response=response,
        )

    async def get_json(
        self, path_or_url: str | httpx.URL, *, params: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET and decode JSON; a body that is not JSON (truncated, an HTML error page) is transient."""
        response = await self.request("GET", path_or_url, params=params, headers=headers)
        return self.json(response)

    def json(self, response: httpx.Response) -> Any:
        """Decode a response's JSON body (see :func:`loads_json`); an undecodable body is a transient fault.

        :raises TransientError: the body is not JSON (truncated, an HTML error page, nested too deeply).
        """
        content = response.content
        try:
            return loads_json(content)
        except ValueError as exc:
            raise TransientError(
                f"the response body is not JSON ({len(content)} bytes; truncated?): retrying",
                provider=self.provider,
                url=response.request.url,
            ) from exc

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

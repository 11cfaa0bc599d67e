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
    ProviderHTTPError,
    ResponseTooLarge,
    TransientError,
    safe_url,
)

__all__ = ["HTTP", "parse_retry_after"]

_fast_loads: Callable[[bytes], Any] | None
try:  # the `fast` extra: decodes a large page about twice as fast as the standard library
    from msgspec.json import decode as _fast_loads
except ImportError:
    _fast_loads = None

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_MAX_BODY = 64 * 1024 * 1024
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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
        and absolute URLs must be on its host (or in ``allowed_hosts``).
    :param auth: an httpx ``Auth`` (see :mod:`tidings` auth classes), or None.
    :param client: an existing client to share (it is not closed here), or None.
    :param transport: a transport for a new client (an in-process emulator), or None.
    :param max_body_bytes: a larger response body is refused with :class:`ResponseTooLarge`.
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
        self.allowed_hosts = {self.base_url.host, *allowed_hosts}
        self.limiter = limiter
        self.headers = dict(headers or {})
        self.requests_sent = 0
        self._joined: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:
        return f"HTTP(provider={self.provider!r}, base_url={safe_url(self.base_url)!r})"

    def url(self, path_or_url: str | httpx.URL) -> httpx.URL:
        """Resolve a path against the base URL; refuse an absolute URL on another host."""
        text = str(path_or_url)
        if "://" in text:
            url = httpx.URL(text)
            if url.host not in self.allowed_hosts:
                raise ForeignHostError(
                    f"refused to follow a link to {url.host!r}, which is not the configured host "
                    f"{self.base_url.host!r}; the plugin must compute the next page itself",
                    provider=self.provider,
                    url=url,
                )
            return url
        joined = self._joined.get(text)
        if joined is None:  # httpx's URL.join is slow next to a dict lookup; a feed asks for the same few paths
            joined = self.base_url.join(text.lstrip("/"))
            if len(self._joined) < 1024:
                self._joined[text] = joined
        return joined

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
        request = self.client.build_request(method, url, params=params, json=json, content=content, headers=merged)
        started = time.monotonic()
        try:
            if self.limiter is not None:
                async with self.limiter:
                    response = await self._send(request)
            else:
                response = await self._send(request)
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

    async def _send(self, request: httpx.Request) -> httpx.Response:
        self.requests_sent += 1
        response = await self.client.send(request, auth=self.auth or httpx.USE_CLIENT_DEFAULT, stream=True)
        try:
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
                raise ResponseTooLarge(
                    f"response body of {declared} bytes is over the cap of {self.max_body_bytes}; "
                    "raise max_body_bytes or ask for smaller pages",
                    provider=self.provider,
                    response=response,
                )
            chunks = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise ResponseTooLarge(
                        f"response body is over the cap of {self.max_body_bytes} bytes; "
                        "raise max_body_bytes or ask for smaller pages",
                        provider=self.provider,
                        response=response,
                    )
                chunks.append(chunk)
        finally:
            await response.aclose()
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k not in ("content-encoding", "content-length")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=request
        )

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
        """Decode a response's JSON body, treating an undecodable body as a transient fault.

        msgspec decodes when installed (the ``fast`` extra); a document it refuses but the standard
        library reads (NaN, Infinity, lone surrogates, UTF-16) is read by ``json.loads``, so the
        result never depends on the extra.
        """
        content = response.content
        if _fast_loads is not None:
            try:
                return _fast_loads(content)
            except ValueError:  # msgspec.DecodeError
                pass
        try:
            return json.loads(content)
        except ValueError as exc:
            raise TransientError(
                f"the response body is not JSON ({len(content)} bytes; truncated?): retrying",
                provider=self.provider,
                url=response.request.url,
            ) from exc

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

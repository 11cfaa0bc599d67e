"""Authentication as httpx ``Auth`` flows: bearer, basic, API-key header, OAuth2 client credentials.

Secrets live in private attributes and never appear in a repr, a log line or an
error message.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from tidings._errors import AuthenticationError, TransientError
from tidings._http import RETRYABLE_STATUS, loads_json, parse_retry_after, read_capped, read_capped_sync

__all__ = ["ApiKeyHeader", "BasicAuth", "BearerToken", "OAuth2ClientCredentials"]


class BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>``: a static token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(***)"


class BasicAuth(httpx.Auth):
    """``Authorization: Basic ...``, from a user and password, or from an API key as given.

    :param api_key: sent as ``Basic <api_key>`` unchanged (the form some providers document).
    """

    def __init__(self, username: str | None = None, password: str = "", *, api_key: str | None = None) -> None:
        if api_key is not None:
            self._value = api_key
        else:
            self._value = base64.b64encode(f"{username or ''}:{password}".encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Basic {self._value}"
        yield request

    def __repr__(self) -> str:
        return "BasicAuth(***)"


class ApiKeyHeader(httpx.Auth):
    """An API key in a header of the provider's choosing (``X-API-Key`` by default)."""

    def __init__(self, key: str, header: str = "X-API-Key") -> None:
        self._key = key
        self.header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._key
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyHeader(header={self.header!r}, key=***)"


TOKEN_BODY_CAP = 1024 * 1024  # a token answer is a few hundred bytes


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client credentials: fetch a token, refresh it before expiry and on a 401.

    Concurrent requests needing a token wait for one token request (one per event loop). A
    request refused with 401 is sent again once with a fresh token; refused again, the fresh
    token is dropped and a :class:`TransientError` raised, so the watch retries within its
    retry budget (a provider revoking tokens is survived; credentials the token endpoint itself
    refuses are an :class:`AuthenticationError` at once). Token answers are read up to
    ``max_body_bytes``, decoded (an endless or gzip-bomb answer is refused).

    :param token_url: the token endpoint.
    :param audience: sent when given (some providers require it).
    :param scope: sent when given.
    :param form: send the token request as a form (RFC 6749) instead of JSON.
    :param leeway: refresh this many seconds before the token expires (at most half its lifetime).
    :param max_body_bytes: the largest token answer (and 401 answer) read.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        scope: str | None = None,
        form: bool = False,
        leeway: float = 60.0,
        max_body_bytes: int = TOKEN_BODY_CAP,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience
        self.scope = scope
        self.form = form
        self.leeway = leeway
        self._token: str | None = None
        self._expires_at = 0.0
        self._leeway = leeway
        self.max_body_bytes = max_body_bytes
        # the token lock, one per event loop (an anyio.Lock belongs to the loop it was first used in)
        self._lock_var: anyio.lowlevel.RunVar[anyio.Lock] = anyio.lowlevel.RunVar(f"tidings-oauth-lock-{id(self)}")
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, secret=***)"

    def _token_request(self) -> httpx.Request:
        body: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.audience:
            body["audience"] = self.audience
        if self.scope:
            body["scope"] = self.scope
        if self.form:
            return httpx.Request("POST", self.token_url, data=body)
        return httpx.Request("POST", self.token_url, json=body)

    def _accept(self, response: httpx.Response) -> None:
        if response.status_code in RETRYABLE_STATUS:
            raise TransientError(
                f"the token endpoint answered HTTP {response.status_code}: retrying",
                url=self.token_url,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise AuthenticationError(
                f"the token endpoint refused the client credentials (HTTP {response.status_code}): "
                "check the client id and secret",
                url=self.token_url,
                response=response,
            )
        try:
            data = loads_json(response.content)
        except ValueError:
            raise TransientError(
                "the token endpoint's answer is not JSON (truncated?): retrying", url=self.token_url
            ) from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise AuthenticationError(
                "the token endpoint answered without an access_token", url=self.token_url, response=response
            )
        self._token = str(token)
        given = data.get("expires_in")
        try:
            expires_in = 3600.0 if given is None else float(given)
        except (TypeError, ValueError, OverflowError):
            expires_in = math.nan
        if not math.isfinite(expires_in) or expires_in < 0:
            raise AuthenticationError(
                f"the token endpoint answered an expires_in that is not a number of seconds: {str(given)[:40]!r}",
                url=self.token_url,
                response=response,
            )
        self._expires_at = time.monotonic() + expires_in
        self._leeway = min(self.leeway, expires_in / 2)  # a short-lived token is still used for half its life
        self.tokens_fetched += 1

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at - self._leeway

    def _lock(self) -> anyio.Lock:
        lock = self._lock_var.get(None)
        if lock is None:
            lock = anyio.Lock()
            self._lock_var.set(lock)
        return lock

    def _refused(self, response: httpx.Response, sent_with: str | None) -> TransientError:
        """A fresh token refused too: drop it (unless replaced meanwhile) so the retry fetches another."""
        if self._token == sent_with:
            self._token = None
        return TransientError(
            f"the provider refused a freshly issued token (HTTP {response.status_code}; revoked?): "
            "retrying with a new one; check the client's grants if it lasts",
            url=response.request.url,
        )

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._fresh():
            token_response = yield self._token_request()
            read_capped_sync(token_response, self.max_body_bytes)
            self._accept(token_response)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            read_capped_sync(response, self.max_body_bytes)
            token_response = yield self._token_request()
            read_capped_sync(token_response, self.max_body_bytes)
            self._accept(token_response)
            sent_with = self._token
            request.headers["Authorization"] = f"Bearer {sent_with}"
            response = yield request
            if response.status_code == 401:
                raise self._refused(response, sent_with)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._fresh():
            async with self._lock():
                if not self._fresh():
                    token_response = yield self._token_request()
                    await read_capped(token_response, self.max_body_bytes)
                    self._accept(token_response)
        sent_with = self._token
        request.headers["Authorization"] = f"Bearer {sent_with}"
        response = yield request
        if response.status_code == 401:
            await read_capped(response, self.max_body_bytes)  # httpx reads it on before the next request
            async with self._lock():
                if self._token == sent_with or not self._fresh():  # nobody refreshed meanwhile
                    token_response = yield self._token_request()
                    await read_capped(token_response, self.max_body_bytes)
                    self._accept(token_response)
            sent_with = self._token
            request.headers["Authorization"] = f"Bearer {sent_with}"
            response = yield request
            if response.status_code == 401:
                raise self._refused(response, sent_with)

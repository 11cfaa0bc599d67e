"""OAuth2 client credentials for the financing validation API.

The token endpoint lives on a sibling host: ``https://api.X/v1`` takes its
tokens from ``https://auth.X/oauth/token`` (``api.uat.X`` from ``auth.uat.X``).
The ``make_auth`` hook does not see the base URL, so when no ``token_url`` is
configured the URL is derived from the first API request this auth signs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Generator

import httpx
from tidings import OAuth2ClientCredentials, TransientError, loads_json

__all__ = ["FinancingOAuth", "default_token_url"]

_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def default_token_url(api_url: httpx.URL | str) -> str:
    """The token endpoint for an API URL: ``api.X`` -> ``auth.X/oauth/token``, else ``/oauth/token`` on the same host.

    >>> default_token_url("https://api.uat.securefinancing.com/v1/activity")
    'https://auth.uat.securefinancing.com/oauth/token'
    """
    url = httpx.URL(str(api_url))
    host = url.host
    if host.startswith("api."):
        host = "auth." + host[len("api.") :]
    return str(url.copy_with(host=host, path="/oauth/token", query=None, fragment=None))


class FinancingOAuth(OAuth2ClientCredentials):
    """Client credentials (JSON body with ``audience``); refreshed before expiry and once on a 401.

    A 429 or 5xx from the token endpoint, or a 200 whose body is not JSON (cut off
    on the way), is a :class:`tidings.TransientError` (the engine retries), not a
    refusal of the credentials. A token is refreshed ``leeway`` (60) seconds before
    it expires, or half-way through its life when that is shorter.

    :param token_url: the token endpoint; None derives it from the API's host.
    """

    token_url: str

    def __init__(self, token_url: str | None, client_id: str, client_secret: str, **kwargs: object) -> None:
        super().__init__(token_url or "", client_id, client_secret, **kwargs)  # type: ignore[arg-type]
        self._derive = token_url is None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"FinancingOAuth(token_url={self.token_url!r}, client_id={self.client_id!r}, secret=***)"

    def _bind(self, request: httpx.Request) -> None:
        if self._derive and not self.token_url:
            self.token_url = default_token_url(request.url)

    def _accept(self, response: httpx.Response) -> None:
        if response.status_code in _RETRYABLE:
            raise TransientError(
                f"the token endpoint answered HTTP {response.status_code}: retrying with backoff",
                url=self.token_url,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if response.status_code == 200:
            try:
                loads_json(response.content)
            except ValueError:
                raise TransientError(
                    f"the token endpoint answered a body that is not JSON ({len(response.content)} bytes; "
                    "truncated?): retrying",
                    url=self.token_url,
                ) from None
        issued = time.monotonic()
        super()._accept(response)
        # a short-lived token (expires_in below twice the leeway) is refreshed half-way, not on every request
        lifetime = self._expires_at - issued
        if 0 < lifetime < 2 * self.leeway:
            self._refresh_at = issued + lifetime / 2
        else:
            self._refresh_at = self._expires_at - self.leeway

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._refresh_at

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._bind(request)
        return super().sync_auth_flow(request)

    def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self._bind(request)
        return super().async_auth_flow(request)

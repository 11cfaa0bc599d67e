"""The one error tree of tidings.

::

    TidingsError
    ├── ConfigurationError        bad input from the user: unknown provider, bad parameter, bad time
    │   └── PluginError           a plugin is broken: misspelt hook, missing hook, wrong return type
    ├── ProviderError             the provider answered, and the answer ends the watch
    │   ├── AuthenticationError   401/403, or the token endpoint refused the credentials
    │   ├── ProviderHTTPError     any other final HTTP error (4xx), carrying the response
    │   ├── ForeignHostError      a link pointed off the configured host
    │   └── ResponseTooLarge      a body bigger than the configured cap
    ├── TransientError            worth trying again: connect errors, timeouts, 429, 5xx,
    │                             truncated or non-JSON bodies, retryable codes in a 200 body
    ├── RetriesExhausted          a transient fault outlived the retry budget
    ├── StartOutcomeUnknown       a start request was sent but never answered: not sent again
    ├── ParseError                a record could not become an Event (it is dead-lettered)
    ├── HandlerError              the application's handler raised; the cause is chained
    ├── Undeliverable             a handler cannot take this event: it is dead-lettered, the watch goes on
    └── StoreError                the checkpoint store failed

Every message names the provider, the URL without secrets, and what to do next.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ForeignHostError",
    "HandlerError",
    "ParseError",
    "PluginError",
    "ProviderError",
    "ProviderHTTPError",
    "ResponseTooLarge",
    "RetriesExhausted",
    "StartOutcomeUnknown",
    "StoreError",
    "TidingsError",
    "TransientError",
    "Undeliverable",
]


def safe_url(url: httpx.URL | str) -> str:
    """The URL with user info and query values that look secret removed."""
    u = httpx.URL(str(url))
    if u.userinfo:
        u = u.copy_with(username=None, password=None)
    if u.query:
        params = [
            (k, "***" if any(s in k.lower() for s in ("token", "secret", "key", "password", "auth")) else v)
            for k, v in u.params.multi_items()
        ]
        u = u.copy_with(params=params)
    return str(u)


class TidingsError(Exception):
    """Root of every error tidings raises on purpose.

    :param message: what happened and what to do next.
    :param provider: the provider name, where one is involved.
    :param url: the URL concerned; secrets are removed before it is shown.
    """

    def __init__(self, message: str, *, provider: str | None = None, url: httpx.URL | str | None = None) -> None:
        self.provider = provider
        self.url = safe_url(url) if url is not None else None
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        parts.append(self.message)
        if self.url:
            parts.append(f"(url: {self.url})")
        return " ".join(parts)


class ConfigurationError(TidingsError):
    """The user's input cannot work: fix the configuration and run again."""


class PluginError(ConfigurationError):
    """A plugin does not keep the hook contract."""


class ProviderError(TidingsError):
    """The provider gave an answer that ends the watch.

    :ivar response: the :class:`httpx.Response`, body read, where there was one.
    :ivar code: a provider error code (``GLOBAL_1003``, ``10002``...), where there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        url: httpx.URL | str | None = None,
        response: httpx.Response | None = None,
        code: str | None = None,
        detail: Any = None,
    ) -> None:
        self.response = response
        self.code = code
        self.detail = detail
        if url is None and response is not None:
            url = response.request.url
        super().__init__(message, provider=provider, url=url)

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None


class AuthenticationError(ProviderError):
    """The credentials were refused: check the token or the client credentials."""


class ProviderHTTPError(ProviderError):
    """A final HTTP error (a 4xx other than 401/403/429)."""


class ForeignHostError(ProviderError):
    """A link in a response pointed at another host than the configured one; it was not followed."""


class ResponseTooLarge(ProviderError):
    """A response body exceeded the configured cap (``max_body_bytes``)."""


class TransientError(TidingsError):
    """A fault worth retrying with backoff.

    :ivar retry_after: seconds the server asked us to wait (``Retry-After``), if any.
    :ivar code: a provider error code that asked for a retry (``GLOBAL_1001``), if any.
    :ivar status_code: the HTTP status that asked for a retry (429, 503…), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        url: httpx.URL | str | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.code = code
        self.status_code = status_code
        super().__init__(message, provider=provider, url=url)


class RetriesExhausted(TidingsError):
    """A transient fault lasted longer than the retry budget; the cause is chained."""


class StartOutcomeUnknown(TidingsError):
    """A request of a tracker's start was sent by an earlier run, but its answer never arrived.

    It is not sent again (it may have taken effect); the plugin looks up what it started where
    the API allows, or the error reports the orphan.

    :ivar step: the start step's key (see :func:`tidings.start_step`).
    """

    def __init__(self, message: str, *, provider: str | None = None, step: str = "") -> None:
        self.step = step
        super().__init__(message, provider=provider)


class ParseError(TidingsError):
    """A raw record could not be turned into an Event.

    :ivar record_id: the record's id where it could be read.
    """

    def __init__(self, message: str, *, provider: str | None = None, record_id: str | None = None) -> None:
        self.record_id = record_id
        if record_id is not None:
            message = f"record {record_id!r}: {message}"
        super().__init__(message, provider=provider)


class HandlerError(TidingsError):
    """The application's handler raised; the position of the last delivered event was saved."""


class StoreError(TidingsError):
    """The checkpoint store failed."""


class Undeliverable(TidingsError):
    """Raised by a handler: this event can never be handed over (the CLI: it cannot be written as JSON).

    The event is dead-lettered with the message as its reason and the watch goes on, whatever
    ``on_handler_error`` says: retrying it would fail the same way forever.
    """

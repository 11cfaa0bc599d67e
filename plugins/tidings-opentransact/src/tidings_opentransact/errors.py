"""Typed errors for OpenTransact's JSON:API error documents.

::

    tidings.ProviderError
    ├── tidings.AuthenticationError
    │   └── OpenTransactAuthenticationError   401, codes 10002-10005: check the token
    │       └── OpenTransactForbidden         403, code 10015: the token may not read activities
    └── tidings.ProviderHTTPError
        └── OpenTransactError                 any other 4xx with an error document
            ├── OpenTransactNotFound          404, code 10001: check the base URL
            └── OpenTransactInvalidParameter  422, codes 10006-10014: names the parameter

Each carries ``code``, ``title``, ``detail`` and ``status`` of the first error
object, all of them in ``errors``, and the response. 408, 425, 429 and 5xx stay
:class:`tidings.TransientError` (retried with backoff), whatever their body, and so
does an error document inside a 200 whose own ``status`` is one of them.
"""

from __future__ import annotations

from typing import Any

import httpx
from tidings import (
    AuthenticationError,
    ParseError,
    ProviderHTTPError,
    TransientError,
    WatchContext,
    loads_json,
    parse_retry_after,
    structure,
)

from tidings_opentransact.models import ErrorDocument, ErrorObject

__all__ = [
    "OpenTransactAuthenticationError",
    "OpenTransactError",
    "OpenTransactForbidden",
    "OpenTransactInvalidParameter",
    "OpenTransactNotFound",
    "raise_for_errors",
]

AUTH_CODES = frozenset({"10002", "10003", "10004", "10005"})
PARAMETER_CODES = frozenset(str(c) for c in range(10006, 10015))
NOT_FOUND_CODE = "10001"
RETRYABLE = frozenset({408, 425, 429})  # and every 5xx
FORBIDDEN_CODE = "10015"


class _JsonApiError:
    """The fields every OpenTransact error carries (a mixin over the core's error classes)."""

    code: str | None
    title: str | None
    detail: Any
    status: str | None
    errors: list[ErrorObject]

    def _fill(self, first: ErrorObject, errors: list[ErrorObject]) -> None:
        self.title = first.title
        self.status = first.status
        self.errors = errors


def _describe(first: ErrorObject) -> str:
    parts = [p for p in (first.title, first.detail) if p]
    text = ": ".join(parts) if parts else "no title or detail given"
    return f"code {first.code}, {text}" if first.code else text


class OpenTransactAuthenticationError(_JsonApiError, AuthenticationError):
    """The token was refused (401; codes 10002-10005: missing header, expired, invalid...)."""


class OpenTransactForbidden(OpenTransactAuthenticationError):
    """The token is valid but may not do this (403; code 10015)."""


class OpenTransactError(_JsonApiError, ProviderHTTPError):
    """A final error the API described with a JSON:API error document."""


class OpenTransactNotFound(OpenTransactError):
    """404 (code 10001): the path does not exist; check the base URL (``.../v1``)."""


class OpenTransactInvalidParameter(OpenTransactError):
    """422 (codes 10006-10014): a query parameter was refused.

    :ivar parameter: the refused parameter, from ``source.parameter`` or the detail, where known.
    """

    parameter: str | None = None


def _parameter_of(first: ErrorObject) -> str | None:
    source = first.source or {}
    for key in ("parameter", "pointer"):
        value = source.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _error_document(response: httpx.Response) -> ErrorDocument | None:
    try:
        body = loads_json(response.content)
    except ValueError:  # not JSON, or nested too deeply to decode
        return None
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list) or not body["errors"]:
        return None
    try:
        return structure(body, ErrorDocument)
    except ParseError:
        return None


def error_from_document(ctx: WatchContext, response: httpx.Response, document: ErrorDocument) -> Exception:
    """The typed error for an error document (by code first, then by HTTP status).

    A 200 carrying an error document whose own ``status`` is 408, 425, 429 or 5xx
    gives a :class:`tidings.TransientError` (retried), not a final error.
    """
    first = document.errors[0]
    code = first.code
    status = response.status_code
    if status == 200 and first.status and first.status.isdigit():
        status = int(first.status)  # an error document inside a 200: trust its own status
    what = _describe(first)
    if status in RETRYABLE or status >= 500:
        return TransientError(
            f"HTTP {response.status_code} carrying an error with status {status} ({what}): retrying with backoff",
            provider=ctx.provider,
            url=response.request.url,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            code=code,
        )
    error: _JsonApiError
    kwargs: dict[str, Any] = {"provider": ctx.provider, "response": response, "code": code, "detail": first.detail}
    if code == FORBIDDEN_CODE or (code not in AUTH_CODES and status == 403):
        error = OpenTransactForbidden(
            f"the token may not list activities ({what}): check the token's permissions", **kwargs
        )
    elif code in AUTH_CODES or status == 401:
        error = OpenTransactAuthenticationError(
            f"the provider refused the credentials ({what}): check the token "
            "(and --param auth=basic if the key is meant to be sent as Basic)",
            **kwargs,
        )
    elif code == NOT_FOUND_CODE or status == 404:
        error = OpenTransactNotFound(
            f"not found ({what}): check the base URL, for example https://api.opentransact.com/v1", **kwargs
        )
    elif code in PARAMETER_CODES or status == 422:
        parameter = _parameter_of(first)
        named = f"the parameter {parameter!r}" if parameter else "a parameter"
        invalid = OpenTransactInvalidParameter(
            f"the provider refused {named} ({what}): check --after and the --param filters", **kwargs
        )
        invalid.parameter = parameter
        error = invalid
    else:
        error = OpenTransactError(f"HTTP {response.status_code} from the provider ({what})", **kwargs)
    error._fill(first, document.errors)
    assert isinstance(error, Exception)
    return error


def raise_for_errors(ctx: WatchContext, response: httpx.Response) -> Any:
    """Raise the typed error a response describes, or return its decoded JSON body.

    408/425/429/5xx are transient whatever their body (``ctx.http.raise_for_status``);
    other 4xx with a JSON:API error document become the typed errors above; a 4xx
    without one falls back to the core's mapping. A 200 whose body is an error
    document (``errors`` and no ``data``) is treated as that error.
    """
    status = response.status_code
    if status >= 400:
        if status in (408, 425, 429) or status >= 500:
            ctx.http.raise_for_status(response)
        document = _error_document(response)
        if document is not None:
            raise error_from_document(ctx, response, document)
        ctx.http.raise_for_status(response)
    body = ctx.http.json(response)
    if isinstance(body, dict) and "data" not in body and isinstance(body.get("errors"), list) and body["errors"]:
        document = _error_document(response)
        if document is not None:
            raise error_from_document(ctx, response, document)
    return body

"""The emulator base class: a Starlette app, in-process or on loopback."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import attrs
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from tidings._serve import serve_asgi
from tidings.sandbox._clock import Clock
from tidings.sandbox._faults import ConnectionReset, Faults

__all__ = ["Emulator", "Scenario"]


@attrs.define
class Scenario:
    """A prepared piece of work the demo and the contract suite follow.

    :param params: the ``--param`` values of a watch that follows it.
    :param expected_ids: every event id a full read must deliver exactly once
        (for a tracker: by the time it ends; for a feed: once idle).
    :param page_size: a page size that makes the read cross page boundaries.
    :param after: the ``--after`` a feed watch should start from, if any.
    """

    params: dict[str, Any] = attrs.field(factory=dict)
    expected_ids: frozenset[str] = frozenset()
    page_size: int | None = None
    after: str | None = None


class _InProcess(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except ConnectionReset as exc:
            raise httpx.ReadError("connection reset (sandbox fault)", request=request) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class Emulator:
    """Base class of every provider emulator.

    A subclass sets :attr:`provider` (and :attr:`base_path`), implements
    :meth:`routes` and :meth:`scenario`, and reads time from :attr:`clock` and
    randomness from :attr:`random`. Requests without ``Authorization: Bearer
    <token>`` can be refused with :meth:`unauthorized`.

    :param seed: seeds :attr:`random` and the faults.
    :param clock: the emulated clock (default: real time).
    :param faults: fault switches (default: none).
    :param token: the bearer token the emulator accepts (default ``"sandbox-token"``).
    """

    provider: ClassVar[str] = ""
    base_path: ClassVar[str] = ""
    default_token: ClassVar[str] = "sandbox-token"

    def __init__(
        self, *, seed: int = 0, clock: Clock | None = None, faults: Faults | None = None, token: str | None = None
    ) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self.clock = clock or Clock()
        self.faults = faults or Faults(seed=seed)
        self.token = token or self.default_token
        self.requests: list[tuple[str, str]] = []  # (method, path with query), for tests
        self._app: Any = None

    # -- for subclasses -----------------------------------------------------

    def routes(self) -> Sequence[BaseRoute]:
        """The API's Starlette routes, paths including :attr:`base_path`."""
        raise NotImplementedError

    def scenario(self, size: int = 20) -> Scenario:
        """Prepare work of about ``size`` events and say how to follow it."""
        raise NotImplementedError

    def expected_ids(self, scenario: Scenario) -> frozenset[str]:
        """The event ids a full read of ``scenario`` must deliver, asked after the read
        (override when they depend on ids made during the run, such as a session id)."""
        return scenario.expected_ids

    def expected_after_kills(self, scenario: Scenario) -> frozenset[str]:
        """The event ids a read of ``scenario`` killed at random moments and resumed must still deliver.

        The same as :meth:`expected_ids` unless the API shows only the present (override then): a
        status endpoint's intermediate status read by a follower killed before saving it is gone
        once the request moved on, and no resume can read it again.
        """
        return self.expected_ids(scenario)

    def error_in_200(self) -> Any | None:
        """The body of an 'error code inside a 200' fault, or None if the API has none."""
        return None

    def is_api_path(self, path: str) -> bool:
        """Faults apply to these paths only (not to sandbox control routes)."""
        return not path.startswith("/_sandbox")

    # -- helpers -------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self, body: Any = None) -> Response:
        return JSONResponse(body if body is not None else {"error": "unauthorized"}, status_code=401)

    # -- running ---------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The ASGI app: routes plus the fault middleware."""
        if self._app is None:
            inner = Starlette(routes=list(self.routes()))
            has_error_body = type(self).error_in_200 is not Emulator.error_in_200
            faulty = self.faults.middleware(inner, self.error_in_200 if has_error_body else None, self.is_api_path)
            emulator = self

            async def logged(scope: dict[str, Any], receive: Any, send: Any) -> None:
                if scope["type"] == "http":
                    query = scope.get("query_string", b"").decode()
                    emulator.requests.append((scope["method"], scope["path"] + ("?" + query if query else "")))
                await faulty(scope, receive, send)

            self._app = logged
        return self._app

    @property
    def base_url(self) -> str:
        """The base URL to use with :meth:`transport` (no socket behind it)."""
        return f"http://{self.provider or 'emulator'}.sandbox{self.base_path}"

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that calls the app in-process."""
        return _InProcess(self.app)

    @contextlib.contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve on a loopback port (uvicorn in a thread); yields the base URL."""
        with serve_asgi(self.app, host, port, name=f"{self.provider} emulator") as root:
            yield root + self.base_path

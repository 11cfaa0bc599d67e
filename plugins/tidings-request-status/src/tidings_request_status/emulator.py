"""An emulator of the request-status API, faithful to PROVIDERS.md and the seed.

``GET /api/v3/global/call/{id}?page=N&size=M`` answers ``{errorCode: "",
errorMessage: "", content: [{requestId, status}], pageable: {page, size,
totalPages, totalElements}}`` (``page`` 0-based). Each inner request stays
``OPEN`` until its emulated due time has passed *and* it has been served
``OPEN`` at least ``min_open_polls`` times, then shows its final status
(``SUCCESS``, ``FAILURE`` or ``INTERNAL_ERROR``) for good. An unknown id answers
``GLOBAL_1003`` with ``content: ""`` and ``pageable: null``, in a 200 or with a
404 (``unknown_status``). ``busy_next(n)`` queues ``GLOBAL_1001`` answers (in a
200 or with ``busy_status``); the fault switch ``error_in_200`` serves the same
body. ``PUT /api/v2/bulk/subscriber/status`` accepts up to 200 items and returns a
``requestId`` per item and a ``Request-Id`` header for the whole call.

Auth: ``Authorization: Bearer <token>``, or the token in ``api_key_header``.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from tidings.sandbox import Emulator, Scenario

from tidings_request_status.models import OPEN

__all__ = ["BUSY", "UNKNOWN", "InnerState", "RequestStatusEmulator"]

BUSY = {"errorCode": "GLOBAL_1001", "errorMessage": "Service unavailable. Please try again", "content": "",
        "pageable": None}
UNKNOWN = {"errorCode": "GLOBAL_1003", "errorMessage": "Provided request ID does not exist for your account",
           "content": "", "pageable": None}
FINALS = ("SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "INTERNAL_ERROR")
MAX_BULK = 200


@attrs.define
class InnerState:
    """One inner request: its final status, when it is due, and how often it was served OPEN."""

    request_id: str
    final: str
    due: float  # emulated seconds since the emulator's clock started
    served_open: int = 0


class RequestStatusEmulator(Emulator):
    """The request-status API.

    :param unknown_status: the HTTP status of a ``GLOBAL_1003`` answer: 200 (the code inside
        a 200 body) or 404.
    :param busy_status: the HTTP status of a ``GLOBAL_1001`` answer queued with :meth:`busy_next`.
    :param order: ``"stable"`` keeps each id's inner requests in one order; ``"shuffled"`` reorders
        them on every call, so items move between pages from one read to the next.
    :param min_open_polls: an inner request is served ``OPEN`` at least this often before its
        final status shows (so a reader always has a chance to see ``OPEN``).
    :param api_key_header: accept the token in this header instead of ``Authorization: Bearer``.
    :param default_size: the page size when the query gives none.
    """

    provider = "request-status"
    base_path = ""

    def __init__(
        self,
        *,
        unknown_status: int = 200,
        busy_status: int = 200,
        order: Literal["stable", "shuffled"] = "stable",
        min_open_polls: int = 3,
        api_key_header: str | None = None,
        default_size: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.unknown_status = unknown_status
        self.busy_status = busy_status
        self.order = order
        self.min_open_polls = min_open_polls
        self.api_key_header = api_key_header
        self.default_size = default_size
        self.calls: dict[str, list[InnerState]] = {}
        self.busy: deque[int] = deque()
        self.status_reads = 0

    # -- preparing work ------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def add_call(
        self, inner: int = 1, *, request_id: str | None = None, due: tuple[float, float] = (0.5, 4.0),
        finals: Sequence[str] = FINALS,
    ) -> str:
        """Register a call with ``inner`` inner requests finishing between ``due`` emulated seconds."""
        request_id = request_id or self.new_id()
        now = self.clock.elapsed()
        items = []
        for i in range(inner):
            inner_id = request_id if inner == 1 and i == 0 else self.new_id()
            items.append(InnerState(inner_id, self.random.choice(list(finals)), now + self.random.uniform(*due)))
        self.calls[request_id] = items
        return request_id

    def busy_next(self, times: int = 1) -> None:
        """Answer the next ``times`` status reads with ``GLOBAL_1001``."""
        self.busy.extend([self.busy_status] * times)

    def status_of(self, inner: InnerState) -> str:
        if inner.served_open >= self.min_open_polls and self.clock.elapsed() >= inner.due:
            return inner.final
        return OPEN

    def scenario(self, size: int = 20) -> Scenario:
        """Bulk-like ids of several inner requests (pages of 3) plus one single request and one unknown id."""
        ids = []
        remaining = max(size // 2, 4)  # about two events (OPEN, final) per inner request
        while remaining > 0:
            inner = min(remaining, self.random.randint(2, 7))
            ids.append(self.add_call(inner))
            remaining -= inner
        ids.append(self.add_call(1))
        unknown = self.new_id()
        ids.append(unknown)
        return Scenario(params={"request_id": ids}, page_size=3, expected_ids=self._expected(ids))

    def _expected(self, ids: Sequence[str]) -> frozenset[str]:
        expected: set[str] = set()
        for request_id in ids:
            items = self.calls.get(request_id)
            if items is None:
                expected.add(f"{request_id}:GLOBAL_1003")
                continue
            for inner in items:
                expected.add(f"{inner.request_id}:{OPEN}")
                expected.add(f"{inner.request_id}:{inner.final}")
        return frozenset(expected)

    def expected_after_kills(self, scenario: Scenario) -> frozenset[str]:
        # the endpoint shows the present only: an OPEN read by a follower killed before saving it is
        # gone once the request is final (never shown again); final statuses never are
        return frozenset(i for i in self.expected_ids(scenario) if not i.endswith(f":{OPEN}"))

    def error_in_200(self) -> Any:
        return dict(BUSY)

    # -- the API -------------------------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        if self.api_key_header:
            return request.headers.get(self.api_key_header) == self.token
        return super().authorized(request)

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/api/v3/global/call/{id}", self._status, methods=["GET"]),
            Route("/api/v2/bulk/subscriber/status", self._bulk, methods=["PUT"]),
        ]

    async def _status(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized({"errorCode": "GLOBAL_1002", "errorMessage": "Unauthorized", "content": "",
                                      "pageable": None})
        self.status_reads += 1
        if self.busy:
            return JSONResponse(BUSY, status_code=self.busy.popleft())
        items = self.calls.get(request.path_params["id"])
        if items is None:
            return JSONResponse(UNKNOWN, status_code=self.unknown_status)
        try:
            page = int(request.query_params.get("page", 0))
            size = int(request.query_params.get("size", self.default_size))
        except ValueError:
            return JSONResponse({"errorCode": "GLOBAL_1000", "errorMessage": "Bad page or size", "content": "",
                                 "pageable": None}, status_code=400)
        if page < 0 or size < 1:
            return JSONResponse({"errorCode": "GLOBAL_1000", "errorMessage": "Bad page or size", "content": "",
                                 "pageable": None}, status_code=400)
        ordered = list(items)
        if self.order == "shuffled":
            self.random.shuffle(ordered)
        chunk = ordered[page * size : (page + 1) * size]
        content = []
        for inner in chunk:
            status = self.status_of(inner)
            if status == OPEN:
                inner.served_open += 1
            content.append({"requestId": inner.request_id, "status": status})
        total_pages = (len(items) + size - 1) // size
        return JSONResponse(
            {
                "errorCode": "",
                "errorMessage": "",
                "content": content,
                "pageable": {"page": page, "size": size, "totalPages": total_pages, "totalElements": len(items)},
            }
        )

    async def _bulk(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        try:
            body = await request.json()
            bulk = body["bulk"]
            assert isinstance(bulk, list)
        except Exception:
            return JSONResponse({"errorCode": "GLOBAL_1000", "errorMessage": "Bad bulk body"}, status_code=400)
        if not bulk or len(bulk) > MAX_BULK:
            return JSONResponse(
                {"errorCode": "GLOBAL_1004", "errorMessage": f"A bulk call carries 1 to {MAX_BULK} items"},
                status_code=400,
            )
        call_id = self.new_id()
        results = []
        inner_states = []
        for item in bulk:
            ident = item.get("subscriberIdentifiers") if isinstance(item, dict) else None
            if not isinstance(ident, dict) or not ident.get("type") or not ident.get("value"):
                results.append({"errorCode": "BULK_1001", "errorMessage": "Missing subscriberIdentifiers",
                                "requestId": None, "subscriberIdentifiers": ident, "content": item})
                continue
            request_id = self.add_call(1)
            inner_states.extend(self.calls[request_id])
            results.append({"errorCode": "", "errorMessage": "", "requestId": request_id,
                            "subscriberIdentifiers": ident, "content": item.get("content")})
        self.calls[call_id] = inner_states  # the whole call, by its Request-Id header
        return JSONResponse({"bulk": results}, status_code=202, headers={"Request-Id": call_id})

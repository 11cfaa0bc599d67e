"""attrs records for every body the request-status API returns, and the cursor.

JSON keys are camelCase; the records use snake_case names and register renames
on the core's shared cattrs converter. Unknown extra keys are tolerated (they
stay in ``Event.raw``).
"""

from __future__ import annotations

from typing import Any

import attrs
from tidings import rename_fields

__all__ = [
    "FINAL_STATUSES",
    "OPEN",
    "BulkItem",
    "BulkItemResult",
    "BulkRequest",
    "BulkResponse",
    "ErrorResponse",
    "InnerRequest",
    "Pageable",
    "RequestStatusCursor",
    "StatusPage",
    "SubscriberIdentifiers",
]

OPEN = "OPEN"
#: statuses after which an inner request never changes [doc]
FINAL_STATUSES = frozenset({"SUCCESS", "FAILURE", "INTERNAL_ERROR"})


@attrs.frozen(slots=True)
class InnerRequest:
    """One item of ``content``: an inner request and its status (``OPEN``, ``SUCCESS``...)."""

    request_id: str
    status: str


@attrs.frozen(slots=True)
class Pageable:
    """Paging information of a successful answer; ``page`` is 0-based."""

    page: int
    size: int
    total_pages: int
    total_elements: int


@attrs.frozen(slots=True)
class StatusPage:
    """A successful ``GET api/v3/global/call/{id}`` answer (the seed's *Success ACK*)."""

    content: list[InnerRequest]
    error_code: str = ""
    error_message: str = ""
    pageable: Pageable | None = None


@attrs.frozen(slots=True)
class ErrorResponse:
    """A failed answer (the seed's *Failure NAK*): ``content`` is ``""`` and ``pageable`` null."""

    error_code: str
    error_message: str = ""
    content: Any = ""
    pageable: Pageable | None = None


@attrs.frozen(slots=True)
class SubscriberIdentifiers:
    """Which subscriber a bulk item is about (``{type, value}``, e.g. ``ICCID``)."""

    type: str
    value: str


@attrs.frozen(slots=True)
class BulkItem:
    """One item of a bulk call (``PUT /api/v2/bulk/subscriber/status``)."""

    subscriber_identifiers: SubscriberIdentifiers
    content: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class BulkRequest:
    """The body of a bulk call: at most 200 items."""

    bulk: list[BulkItem]


@attrs.frozen(slots=True)
class BulkItemResult:
    """The bulk call's answer for one item: the ``requestId`` to follow, or an error code."""

    request_id: str | None = None
    error_code: str = ""
    error_message: str = ""
    subscriber_identifiers: SubscriberIdentifiers | None = None
    content: Any = None


@attrs.frozen(slots=True)
class BulkResponse:
    """The answer of a bulk call."""

    bulk: list[BulkItemResult]


@attrs.frozen(slots=True)
class RequestStatusCursor:
    """Where the watch of one request id stands.

    :param page: the next page to read (0-based); back to 0 after the last page.
    :param statuses: the last delivered status of each inner request (``requestId -> status``).
    :param cycle_items: items read on the earlier pages of the current pass over the pages.
    :param cycle_unreadable: of those, items without a readable ``requestId``/``status``.
    """

    page: int = 0
    statuses: dict[str, str] = attrs.field(factory=dict)
    cycle_items: int = 0
    cycle_unreadable: int = 0


rename_fields(InnerRequest, {"request_id": "requestId"})
rename_fields(Pageable, {"total_pages": "totalPages", "total_elements": "totalElements"})
rename_fields(StatusPage, {"error_code": "errorCode", "error_message": "errorMessage"})
rename_fields(ErrorResponse, {"error_code": "errorCode", "error_message": "errorMessage"})
rename_fields(BulkItem, {"subscriber_identifiers": "subscriberIdentifiers"})
rename_fields(
    BulkItemResult,
    {
        "request_id": "requestId",
        "error_code": "errorCode",
        "error_message": "errorMessage",
        "subscriber_identifiers": "subscriberIdentifiers",
    },
)

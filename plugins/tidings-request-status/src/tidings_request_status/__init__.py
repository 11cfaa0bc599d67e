"""tidings-request-status: follow asynchronous request ids until every inner request is final."""

from __future__ import annotations

from tidings_request_status.emulator import RequestStatusEmulator
from tidings_request_status.models import (
    FINAL_STATUSES,
    OPEN,
    BulkItem,
    BulkItemResult,
    BulkRequest,
    BulkResponse,
    ErrorResponse,
    InnerRequest,
    Pageable,
    RequestStatusCursor,
    StatusPage,
    SubscriberIdentifiers,
)
from tidings_request_status.plugin import NAME

__version__ = "0.1.0"

__all__ = [
    "FINAL_STATUSES",
    "NAME",
    "OPEN",
    "BulkItem",
    "BulkItemResult",
    "BulkRequest",
    "BulkResponse",
    "ErrorResponse",
    "InnerRequest",
    "Pageable",
    "RequestStatusCursor",
    "RequestStatusEmulator",
    "StatusPage",
    "SubscriberIdentifiers",
    "__version__",
]

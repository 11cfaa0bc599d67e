"""The records the financing validation API returns, and the feed's cursor.

Every record is a frozen, slotted attrs class structured by the core's cattrs
converter; unknown extra fields are tolerated (the event's ``raw`` keeps them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "DOCUMENT_CHECK",
    "FINANCING_CHECK",
    "ActivityCursor",
    "ActivityEvent",
    "ActivityPage",
    "EventDetail",
    "Link",
]

FINANCING_CHECK = "FING_duplicate_financing_check"
"""The service whose ``status`` is a financing validation request status (REGU, REDU, DFIN, FNCD, CANC, PNDG)."""

DOCUMENT_CHECK = "DDOC_duplicate_document_check"
"""The service whose ``status`` is a document match type (EXCT...)."""


@attrs.frozen(slots=True)
class Link:
    """One entry of the body's ``links``: read, never followed (it may name another host)."""

    href: str
    rel: str
    type: str | None = None


@attrs.frozen(slots=True)
class EventDetail:
    """One check's outcome within an event."""

    service_name: str
    status: str | None = None
    registered_document_identification: str | None = None


@attrs.frozen(slots=True)
class ActivityEvent:
    """One event of ``GET /activity``.

    :ivar follow_up: with ``--param enrich=…``, the record(s) behind the event from
        ``/status`` (a mapping request id -> body) or ``/financing-validation-requests``
        (the body); None otherwise. Never part of ``Event.raw``.
    """

    event_identification: str
    event_date_time: datetime
    data_set_identification: str | None = None
    submitter_data_set_identification: str | None = None
    batch_identification: str | None = None
    submitter_batch_identification: str | None = None
    pool_identification: str | None = None
    request_identifications: tuple[str, ...] = ()
    event_details: tuple[EventDetail, ...] = ()
    follow_up: Any = None

    def detail(self, service_name: str) -> EventDetail | None:
        """The first detail of ``service_name``, or None."""
        return next((d for d in self.event_details if d.service_name == service_name), None)

    @property
    def financing_status(self) -> str | None:
        """The financing validation request status (``DFIN``...), if the event carries one."""
        found = self.detail(FINANCING_CHECK)
        return found.status if found else None

    @property
    def match_type(self) -> str | None:
        """The duplicate document match type (``EXCT``...), if the event carries one."""
        found = self.detail(DOCUMENT_CHECK)
        return found.status if found else None


@attrs.frozen(slots=True)
class ActivityPage:
    """The body of ``GET /activity``."""

    events: tuple[ActivityEvent, ...] = ()
    links: tuple[Link, ...] = ()


@attrs.frozen(slots=True)
class ActivityCursor:
    """Where the feed is.

    :ivar newest: the newest ``event_date_time`` delivered by the polls that ended; the
        next poll asks for ``after = newest - overlap`` (never earlier than ``start``).
    :ivar poll_newest: the newest ``event_date_time`` delivered by the poll in progress;
        it becomes ``newest`` when that poll ends.
    :ivar start: the user's ``--after`` (events before it are never asked for).
    :ivar poll_after: the fixed ``after`` of the poll in progress (None: no ``after``).
    :ivar offset: the next offset within the poll in progress; 0 starts a new poll.
    """

    newest: datetime | None = None
    start: datetime | None = None
    poll_after: datetime | None = None
    offset: int = 0
    poll_newest: datetime | None = None

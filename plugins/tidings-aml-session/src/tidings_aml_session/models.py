"""attrs records for everything the AML session API returns, and the stream cursor.

JSON keys are camelCase (``sessionId``); the records use snake_case attributes
and :func:`tidings.rename_fields` maps them. Unknown keys are tolerated (the
event's ``raw`` keeps them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
from tidings import rename_fields

__all__ = [
    "OrganizationResult",
    "SessionCreated",
    "SessionCursor",
    "SessionEvent",
    "SessionState",
    "WebhookNotice",
]

#: The webhook statuses the documents name, which are also the event types.
JSON_DATA_READY = "JsonDataReady"
REPORT_READY = "ReportReady"
ALL_DONE = "AllDone"
FAILED = "Failed"
EVENT_TYPES = (JSON_DATA_READY, REPORT_READY, ALL_DONE, FAILED)
TERMINAL_TYPES = frozenset({ALL_DONE, FAILED})


@attrs.frozen(slots=True)
class SessionCreated:
    """``201 Created`` answer to ``POST /organization/session/{country}``."""

    session_id: str


@attrs.frozen(slots=True)
class SessionState:
    """``GET /organization/session/{sessionId}`` [ours]: the session and a status per result entity.

    :ivar status: ``IN_PROGRESS``, ``ALL_DONE`` or ``FAILED``.
    :ivar results: entity name (``jsonData``, ``aml-report``...) -> ``NOT_STARTED``,
        ``IN_PROGRESS``, ``READY`` or ``FAILED``, in the order the server listed them.
    """

    session_id: str
    status: str
    results: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class WebhookNotice:
    """A webhook body [ours]: ``{"sessionId", "status": "<webhook status>", "timestamp"}``."""

    session_id: str
    status: str
    timestamp: datetime | None = None


@attrs.frozen(slots=True)
class SessionEvent:
    """The typed record of every event this provider yields.

    Built from a poll: ``status`` is the webhook status the change stands for,
    ``entity`` the result entity that turned READY (None for AllDone/Failed),
    ``session`` the status body as received, ``saved_to`` the file a
    ``save_json``/``save_reports`` parameter wrote it to.
    """

    session_id: str
    status: str
    entity: str | None = None
    timestamp: datetime | None = None
    session: SessionState | None = None
    saved_to: str | None = None


@attrs.frozen(slots=True)
class OrganizationResult:
    """``GET /organization/session/{sessionId}/json``: the organisation's AML data set.

    Only the key information is typed (the rest depends on ``expands``);
    ``data`` is the whole JSON document as received.
    """

    name: str | None = None
    organization_number: str | None = None
    duns_number: str | None = None
    country: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(slots=True)
class SessionCursor:
    """Where a session stream is: the ids of the events already delivered.

    The session status is a snapshot, not a feed, so the position is simply what
    has been delivered; a re-poll skips those (and the engine's recent ids would too).
    """

    delivered: tuple[str, ...] = ()


rename_fields(SessionCreated, {"session_id": "sessionId"})
rename_fields(SessionState, {"session_id": "sessionId"})
rename_fields(WebhookNotice, {"session_id": "sessionId"})
rename_fields(SessionEvent, {"session_id": "sessionId", "saved_to": "savedTo"})

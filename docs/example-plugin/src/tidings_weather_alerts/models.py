"""The records of the Weather Alerts API, and the cursor the watch saves."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen(slots=True)
class Alert:
    """One alert as ``GET /alerts`` serves it (the typed ``event.record``)."""

    seq: int
    id: str
    area: str
    severity: str
    event: str
    headline: str
    issued_at: datetime


@attrs.frozen(slots=True)
class AlertsCursor:
    """Where we are: the greatest ``seq`` delivered (the API's ``after_seq`` is exclusive)."""

    last_seq: int = 0

"""Records of the bank synchronisation API, and the queue cursor.

Every record is a frozen, slotted attrs class structured by :data:`tidings.converter`
(which reads epoch seconds and ISO-8601 text into UTC datetimes and ignores extra
keys: the event's ``raw`` keeps them). Optional fields default to None so that a
server that leaves one out still parses; the envelope fields an event cannot do
without are checked in ``parse_event``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

__all__ = ["Account", "Channel", "QueueCursor", "QueueEvent", "QueueSubscription", "Resource", "SyncAllResponse"]


@attrs.frozen(slots=True)
class Channel:
    """One channel of a connection (``EMBEDDED`` scraping or ``REDIRECT`` PSD2 API)."""

    channel_definition_id: str
    status: str | None = None
    last_success_date: datetime | None = None
    last_end_date: datetime | None = None
    expires: datetime | None = None
    id: str | None = None
    connection_id: str | None = None


@attrs.frozen(slots=True)
class Account:
    """A financial product found by a ``LIST_ACCOUNTS`` sync."""

    id: str
    name: str | None = None
    type: str | None = None
    iban: str | None = None
    currency: str | None = None
    status: str | None = None
    channel_definition_id: str | None = None


@attrs.frozen(slots=True)
class Resource:
    """What a queue event is about: a connection (with its channels and, after a
    ``LIST_ACCOUNTS`` phase, its accounts) or, for channel events, one channel."""

    id: str | None = None
    status: str | None = None
    provider_id: str | None = None
    name: str | None = None
    channels: tuple[Channel, ...] = ()
    accounts: tuple[Account, ...] = ()
    creation_date: datetime | None = None
    connection_id: str | None = None
    channel_definition_id: str | None = None
    last_success_date: datetime | None = None
    last_end_date: datetime | None = None
    expires: datetime | None = None


@attrs.frozen(slots=True)
class QueueEvent:
    """One event of a queue (``GET /queues/{queue_id}`` returns a list of them)."""

    id: str
    event_type: str
    creation_date: datetime
    resource: Resource
    resource_type: str | None = None


@attrs.frozen(slots=True)
class QueueSubscription:
    """The answer to ``POST /queues``: the new queue's id."""

    id: str


@attrs.frozen(slots=True)
class SyncAllResponse:
    """The answer to ``POST /connections/synchronize``: one link per connection synchronised."""

    connection_links: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class QueueCursor:
    """Where a queue watch stands.

    :ivar last_id: the greatest event id delivered (or set aside), compared as a number;
        None before the first event.
    :ivar done: the ids delivered or set aside, as sorted inclusive ranges ``(low, high)``:
        an id outside them is new however far below ``last_id`` it is (a late event).
    :ivar floor: ids at or below it count as done (the oldest ranges, once forgotten);
        None when no range was forgotten.
    :ivar pending: raw records read from the queue but not yet delivered when the
        position was saved mid-page (a destructive queue no longer holds them).
    :ivar unplaced: fingerprints of records without a numeric id already handed over,
        so that a queue that keeps them does not hand them over again (bounded).
    :ivar set_aside: ids set aside by positions saved before ``done`` existed (read, never written).
    """

    last_id: int | None = None
    done: tuple[tuple[int, int], ...] = ()
    floor: int | None = None
    pending: tuple[Any, ...] = ()
    unplaced: tuple[str, ...] = ()
    set_aside: tuple[int, ...] = ()

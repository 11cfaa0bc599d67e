"""Reading a queue: its body, the place of each event, and the connection it concerns.

Pure functions, no I/O: the hooks in :mod:`tidings_bank_sync.plugin` call them.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tidings

from tidings_bank_sync.models import QueueCursor

__all__ = [
    "PROVIDER",
    "add_done",
    "connection_id_from_link",
    "connection_of",
    "event_number",
    "fingerprint",
    "is_done",
    "parse_queue_body",
    "select_new",
]

PROVIDER = "bank-sync"
MAX_RANGES = 512  # ranges of done ids kept in the cursor; older ones fold into its floor


def parse_queue_body(text: str | bytes) -> list[Any]:
    """The events of a ``GET /queues/{queue_id}`` body.

    The body is a JSON array of events; a single event object, or an object with an
    ``events`` array, is accepted too.

    :raises tidings.ParseError: the text is not JSON (the message names the line and
        column the decoder stopped at) or not one of those shapes.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise tidings.ParseError(f"the queue body is not UTF-8: {exc}", provider=PROVIDER) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise tidings.ParseError(
            f"the queue body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (char {exc.pos})",
            provider=PROVIDER,
        ) from exc
    except RecursionError:
        raise tidings.ParseError("the queue body is JSON nested too deeply to read", provider=PROVIDER) from None
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        if isinstance(data.get("events"), list):
            return list(data["events"])
        if "event_type" in data:
            return [data]
    raise tidings.ParseError(
        f"the queue body is not a JSON array of events (got {type(data).__name__})", provider=PROVIDER
    )


def event_number(record: Any) -> int | None:
    """The numeric value of a record's ``id`` (ids are compared as numbers: ``"10" > "9"``), or None."""
    if not isinstance(record, Mapping):
        return None
    value = record.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def fingerprint(record: Any) -> str:
    """A short stable digest of a record, for records without a numeric id."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def connection_id_from_link(link: Any) -> str | None:
    """``"/connections/42"`` (or an absolute URL, or ``{"href": ...}``) -> ``"42"``."""
    if isinstance(link, Mapping):
        link = link.get("href") or link.get("id")
    if isinstance(link, bool) or link is None:
        return None
    if isinstance(link, int):
        return str(link)
    text = str(link).strip().split("?", 1)[0].rstrip("/")
    if not text:
        return None
    parts = [p for p in text.split("/") if p]
    if "connections" in parts:
        i = len(parts) - 1 - parts[::-1].index("connections")
        if i + 1 < len(parts):
            return parts[i + 1]
        return None
    return parts[-1] if parts else None


def connection_of(record: Mapping[str, Any], followed: Iterable[str] | None = None) -> str | None:
    """The connection an event concerns: its subject.

    A connection event carries the connection as its resource. A channel event
    (``AUTH_FAILED``...) carries a channel: its connection is read from the
    resource's ``connection_id``, a nested ``connection`` object or link, a
    ``connection_link``, then the same keys on the event itself, then any link to
    ``/connections/{id}`` inside the resource (``_links``, ``links``...). A channel
    that names no connection belongs to the one connection followed, when only
    one is.
    """
    resource = record.get("resource")
    resource = resource if isinstance(resource, Mapping) else {}
    for holder in (resource, record):
        value = holder.get("connection_id")
        if value is not None and not isinstance(value, (bool, Mapping, list)):
            return str(value)
        nested = holder.get("connection")
        if isinstance(nested, Mapping) and nested.get("id") is not None:
            return str(nested["id"])
        if isinstance(nested, Mapping) and nested.get("href"):
            found = connection_id_from_link(nested)
            if found:
                return found
        if isinstance(nested, (str, int)) and not isinstance(nested, bool):
            found = connection_id_from_link(nested)
            if found:
                return found
        link = holder.get("connection_link") or holder.get("connection_href")
        if link:
            found = connection_id_from_link(link)
            if found:
                return found
    kind = str(record.get("resource_type") or "").upper()
    if kind == "CONNECTION" and resource.get("id") is not None:
        return str(resource["id"])
    found = _linked_connection(resource, depth=3)
    if found:
        return found
    looks_like_channel = "CHANNEL" in kind or (
        "channel_definition_id" in resource and "channels" not in resource and "provider_id" not in resource
    )
    if looks_like_channel:
        subjects = sorted(followed or ())
        if len(subjects) == 1:
            return subjects[0]
    value = resource.get("id")
    return None if value is None else str(value)


def _linked_connection(value: Any, depth: int) -> str | None:
    """The id in the first ``/connections/{id}`` link found inside ``value`` (not in its channels)."""
    if isinstance(value, str):
        parts = [p for p in value.split("?", 1)[0].split("/") if p]
        if "connections" in parts[:-1]:
            return connection_id_from_link(value)
        return None
    if depth <= 0:
        return None
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key in ("channels", "accounts"):
                continue
            found = _linked_connection(inner, depth - 1)
            if found:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _linked_connection(inner, depth - 1)
            if found:
                return found
    return None


def is_done(cursor: QueueCursor, number: int) -> bool:
    """Whether the event id ``number`` was delivered or set aside already."""
    if cursor.floor is not None and number <= cursor.floor:
        return True
    if not cursor.done:
        # a position saved without ranges: everything up to it was done
        return cursor.floor is None and cursor.last_id is not None and number <= cursor.last_id
    i = bisect.bisect_right(cursor.done, (number, float("inf"))) - 1
    return i >= 0 and cursor.done[i][0] <= number <= cursor.done[i][1]


def add_done(cursor: QueueCursor, numbers: Iterable[int]) -> QueueCursor:
    """The cursor with ``numbers`` among its done ids (ranges merged, bounded) and ``last_id`` raised."""
    numbers = list(numbers)
    if not numbers:
        return cursor
    ranges = list(cursor.done)
    if not ranges and cursor.floor is None and cursor.last_id is not None:
        floor: int | None = cursor.last_id  # a position saved without ranges
    else:
        floor = cursor.floor
    for n in numbers:
        if floor is not None and n <= floor:
            continue
        i = bisect.bisect_right(ranges, (n, float("inf")))
        if i > 0 and ranges[i - 1][0] <= n <= ranges[i - 1][1]:
            continue
        low, high = n, n
        if i > 0 and ranges[i - 1][1] == n - 1:
            i -= 1
            low = ranges.pop(i)[0]
        if i < len(ranges) and ranges[i][0] == n + 1:
            high = ranges.pop(i)[1]
        ranges.insert(i, (low, high))
    if floor is not None:
        while ranges and ranges[0][0] <= floor + 1:
            floor = max(floor, ranges.pop(0)[1])
    while len(ranges) > MAX_RANGES:
        floor = ranges.pop(0)[1]
    last = max(numbers)
    if cursor.last_id is not None:
        last = max(last, cursor.last_id)
    return QueueCursor(
        last_id=last, done=tuple(ranges), floor=floor, pending=cursor.pending, unplaced=cursor.unplaced,
        set_aside=cursor.set_aside,
    )


def select_new(records: Sequence[Any], cursor: QueueCursor) -> tuple[list[Any], int | None, tuple[str, ...], bool]:
    """The records to hand to the engine, oldest first: the cursor's pending records,
    then the queue's records whose id is not done yet (however late they land:
    a queue that keeps its events shows the old ones again, and those are left
    out), then records without a numeric id not yet handed over.

    :return: the records, the greatest id among them (or None), the fingerprints of
        the id-less ones, and whether any record is new.
    """
    numbered: dict[int, Any] = {}
    unnumbered: list[Any] = []
    seen_prints = set(cursor.unplaced)
    new_prints: list[str] = []
    set_aside = set(cursor.set_aside)
    for record in [*cursor.pending, *records]:
        number = event_number(record)
        if number is None:
            mark = fingerprint(record)
            if mark in seen_prints:
                continue
            seen_prints.add(mark)
            new_prints.append(mark)
            unnumbered.append(record)
        elif number not in numbered and number not in set_aside and not is_done(cursor, number):
            numbered[number] = record
    order = sorted(numbered)
    fresh = [numbered[n] for n in order] + unnumbered
    return fresh, (order[-1] if order else None), tuple(new_prints), bool(fresh)

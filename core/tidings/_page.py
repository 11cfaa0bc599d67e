"""A page's new events: parse its records, drop what was delivered already, mark and cut at terminal events.

Everything here works a page at a time, whatever hooks the provider implements: a plain
``parse_event`` runs in one C-level ``map``, a page of new ids is checked with set operations,
``is_terminal`` is a plain call per event (awaited only when it returns an awaitable), and a
cursor is folded once per page when the provider implements ``checkpoint_page``.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from tidings._errors import ParseError
from tidings._models import Event
from tidings._recent import RecentIds

__all__ = ["Fold", "NewEvents", "Parsing", "read_page"]

_event_id = operator.attrgetter("id")

Fold = Callable[[Any, Sequence[Event]], Awaitable[Any]]
"""Fold delivered events into a cursor: ``await fold(cursor, events)`` is the cursor after them."""


@attrs.frozen
class Parsing:
    """A stream's per-record hooks, bound to its context.

    :param parse: ``parse(record)``: an Event (or an awaitable of one); raises ParseError.
    :param terminal: ``terminal(event)``: True/False/None (or an awaitable of one), or None
        when the provider does not implement ``is_terminal``.
    :param plain: ``parse`` is a plain function: a page is parsed in one C-level loop.
    """

    parse: Callable[[Any], Any]
    terminal: Callable[[Event], Any] | None = None
    plain: bool = True


@attrs.define
class NewEvents:
    """What a page brings: its new events (in order), their ids, and what was left out."""

    events: list[Event]
    ids: list[str]
    ends_stream: bool = False  # the last event closes the stream's last open subject: read nothing after it
    duplicates: int = 0
    unparsed: list[tuple[str, Any]] = attrs.field(factory=list)  # (reason, record) to set aside


async def read_page(
    records: Sequence[Any], parsing: Parsing, recent: RecentIds, open_subjects: set[str] | None
) -> NewEvents:
    """The new events of ``records``; their ids are taken into ``recent`` at once.

    :param open_subjects: a tracker stream's subjects still open (not changed here), or None for a
        feed. The events after the one that closes the last of them are not the watch's: they are
        left out, records that fail to parse among them too.
    """
    if not isinstance(records, (list, tuple)):  # indexed below (a ParseError's record)
        records = list(records)
    events, failures = await _parse(records, parsing)
    ids = list(map(_event_id, events))
    if open_subjects is None:
        new = _feed_events(events, ids, recent)
        if parsing.terminal is not None:
            await _mark_terminal(new.events, parsing.terminal)
        new.unparsed = [(reason, record) for _, reason, record in failures]
    else:
        new, cut = await _tracker_events(events, ids, recent, parsing.terminal, open_subjects)
        new.unparsed = [(reason, record) for before, reason, record in failures if before < cut]
    recent.extend(new.ids)
    return new


def _feed_events(events: list[Event], ids: list[str], recent: RecentIds) -> NewEvents:
    if recent.all_new(ids):  # the common case: set operations in C
        return NewEvents(events, ids)
    kept: list[Event] = []
    kept_ids: list[str] = []
    seen: set[str] = set()
    for event, event_id in zip(events, ids, strict=True):
        if event_id in recent or event_id in seen:
            continue
        seen.add(event_id)
        kept.append(event)
        kept_ids.append(event_id)
    return NewEvents(kept, kept_ids, duplicates=len(events) - len(kept))


async def _tracker_events(
    events: list[Event], ids: list[str], recent: RecentIds, terminal: Callable[[Event], Any] | None,
    open_subjects: set[str],
) -> tuple[NewEvents, int]:
    """A tracker's new events, up to the one that closes its last open subject.

    :return: the events, and a cut: the records that failed to parse after ``cut`` events are not the watch's.
    """
    new = NewEvents([], [])
    still_open = set(open_subjects)
    seen: set[str] = set()
    for position, (event, event_id) in enumerate(zip(events, ids, strict=True)):
        if event_id in recent or event_id in seen:
            new.duplicates += 1
            continue
        seen.add(event_id)
        if terminal is not None and not event.terminal and await _verdict(terminal(event)):
            event = _as_terminal(event)
        new.events.append(event)
        new.ids.append(event_id)
        if event.terminal:
            still_open.discard(event.subject)  # type: ignore[arg-type]
            if not still_open:
                new.ends_stream = True
                return new, position + 1
    return new, len(events) + 1  # no cut: every record was the watch's


async def _mark_terminal(events: list[Event], terminal: Callable[[Event], Any]) -> None:
    """Ask ``is_terminal`` of every event not terminal yet (a plain call each; awaited only if it must be)."""
    for position, event in enumerate(events):
        if event.terminal:
            continue
        verdict = terminal(event)
        if verdict is None or verdict is False:
            continue
        if verdict is True or await _verdict(verdict):
            events[position] = _as_terminal(event)


async def _verdict(value: Any) -> bool:
    if value is None or value is False or value is True:
        return bool(value)
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


def _as_terminal(event: Event) -> Event:
    return attrs.evolve(event, terminal=True)


async def _parse(records: Sequence[Any], parsing: Parsing) -> tuple[list[Event], list[tuple[int, str, Any]]]:
    """Every record's event, and the records that failed: (events parsed before it, reason, record)."""
    if parsing.plain:
        events, failures = _parse_plain(records, parsing.parse)
        if all(event.__class__ is Event for event in events):
            return events, failures
        for event in events:  # an awaitable among them: read the page one record at a time
            if inspect.iscoroutine(event):
                event.close()
    events = []
    failures = []
    for record in records:
        try:
            event = parsing.parse(record)
            if event.__class__ is not Event and inspect.isawaitable(event):
                event = await event
        except ParseError as exc:
            failures.append((len(events), str(exc), record))
            continue
        events.append(event)
    return events, failures


def _parse_plain(records: Sequence[Any], parse: Callable[[Any], Any]) -> tuple[list[Any], list[tuple[int, str, Any]]]:
    """``parse`` over every record in a C-level loop; a ParseError sets its record aside and the loop goes on."""
    events: list[Any] = []
    failures: list[tuple[int, str, Any]] = []
    rest = iter(records)
    while True:
        try:
            events.extend(map(parse, rest))  # keeps what it appended when a record fails
            return events, failures
        except ParseError as exc:
            failures.append((len(events), str(exc), records[len(events) + len(failures)]))


def per_event_fold(checkpoint: Callable[[Any, Event], Any], cursor_type: type) -> Fold:
    """A :data:`Fold` calling ``checkpoint`` once per event (the hook's contract)."""

    async def fold(cursor: Any, events: Sequence[Event]) -> Any:
        for event in events:
            cursor = checkpoint(cursor, event)
            if cursor.__class__ is not cursor_type and inspect.isawaitable(cursor):
                cursor = await cursor
        return cursor

    return fold


def per_page_fold(checkpoint_page: Callable[[Any, Sequence[Event]], Any]) -> Fold:
    """A :data:`Fold` calling ``checkpoint_page`` once for the events (of a page, or the part delivered)."""

    async def fold(cursor: Any, events: Sequence[Event]) -> Any:
        if not events:
            return cursor
        cursor = checkpoint_page(cursor, events)
        if inspect.isawaitable(cursor):
            cursor = await cursor
        return cursor

    return fold

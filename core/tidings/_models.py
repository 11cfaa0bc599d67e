"""The records every watch speaks in: Event, Page, Stream, ProviderInfo, DeadLetter."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, SupportsIndex, overload

import attrs

__all__ = ["DeadLetter", "Event", "EventList", "Page", "Param", "ProviderInfo", "Push", "Stream"]

class _Unset:
    """The placeholder of a typed record not built yet (one object; pickles as itself)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not built yet>"

    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET: Any = _Unset()

Kind = Literal["feed", "tracker"]


@attrs.frozen(slots=True)
class Param:
    """One option a provider understands (``--param KEY=VALUE``, ``params={KEY: VALUE}``), declared once.

    The core structures the given values into a typed object (``ctx.options``) when the watch is
    built, and refuses unknown keys, missing required ones and bad values in one message; help
    text, ``tidings providers --json`` and the docs list the same declaration.

    :param name: the key. ``family.KEY`` declares a family of keys (``metadata.colour=red``),
        read as a dict (``ctx.options.metadata == {"colour": "red"}``).
    :param help: one line for people.
    :param required: the watch cannot be built without it.
    :param repeatable: a list (repeated keys, or comma-separated values), a tuple in ``ctx.options``.
    :param work: the option says what work is followed (request ids, filters): a saved position
        is only resumed with the same values (see :class:`tidings.Watch`'s ``rebase``).
    :param type: what the text becomes: ``str``, ``int``, ``float``, ``bool`` (true/false, yes/no,
        1/0) or any type the core's cattrs converter structures (a ``Literal``, an enum...).
    :param default: the value when the key is absent (for a repeatable one: an empty tuple).
    :param choices: the values allowed (text compared without case, given back as declared).
    :param minimum: the smallest value allowed (a number option; each value of a repeatable one).
    """

    name: str
    help: str
    required: bool = False
    repeatable: bool = False
    work: bool = False
    type: Any = str
    default: Any = None
    choices: Sequence[Any] | None = None
    minimum: float | None = None


@attrs.frozen(slots=True)
class ProviderInfo:
    """What a provider plugin says about itself (the ``provider_info`` hook).

    :param name: the provider name used on the command line (``financing-activity``).
    :param kind: ``"feed"`` (never ends by itself) or ``"tracker"`` (ends when every subject ended).
    :param description: one line for ``tidings providers``.
    :param cursor_type: the attrs class of the cursor; cattrs turns it to and from JSON.
    :param params: the ``--param`` keys the provider understands.
    :param emulator: a zero-argument callable returning the plugin's emulator
        (a :class:`tidings.sandbox.Emulator`), or None.
    :param default_base_url: the production base URL, used when none is configured.
    """

    name: str
    kind: Kind
    description: str
    cursor_type: type
    params: Sequence[Param] = ()
    emulator: Callable[[], Any] | None = None
    default_base_url: str | None = None


@attrs.frozen(slots=True)
class Stream:
    """One polling loop of a watch, with its own cursor.

    A feed has one stream covering no subjects (it never ends). A tracker has one
    or more, each covering the subjects whose terminal events end it.

    :param key: stable within the watch; the cursor is stored under ``(watch name, key)``.
    :param subjects: the subjects this stream waits for; ``None`` for a feed.
    :param data: provider data the stream needs (a session id, a queue id), JSON-able.
    """

    key: str = ""
    subjects: frozenset[str] | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class Page:
    """What ``fetch_page`` returns.

    :param records: the raw records of this page, in delivery order.
    :param more: True when another page is ready now (poll again at once).
    :param advance: applied to the cursor once every record of the page was delivered
        (or dead-lettered): paging state such as the next offset or page number.
    :param ended: subjects that ended with this page (for trackers whose end is not
        carried by one terminal event, such as a request id whose inner requests all finished).
    """

    records: Sequence[Any]
    more: bool = False
    advance: Callable[[Any], Any] | None = None
    ended: frozenset[str] = frozenset()


@attrs.frozen(slots=True)
class Push:
    """A webhook turned into work for a running watch (the ``parse_webhook`` hook).

    :param stream: the key of the stream it concerns.
    :param record: a raw record to deliver through ``parse_event``, or None to
        only make that stream poll at once.
    """

    stream: str
    record: Any = None


@attrs.frozen(slots=True, weakref_slot=False)
class Event:
    """One thing that happened.

    ``id`` is the de-duplication key; ``raw`` is the provider's record exactly as
    received. The typed record is built on first access of :attr:`record` (from
    ``record_type`` with the core's cattrs converter) unless the plugin gave it.

    A frozen, slotted attrs class (``attrs.fields``, ``attrs.evolve``, equality and
    hashing as usual), built two to three times faster than attrs' frozen ``__init__``
    builds one, since a watch builds one per event: see :meth:`make`. Not meant to be
    subclassed: put provider data in the typed record.
    """

    provider: str
    id: str
    subject: str | None
    type: str
    status: str | None
    occurred_at: datetime
    raw: Any = attrs.field(repr=False)
    terminal: bool = False
    record_type: builtins.type | None = attrs.field(default=None, repr=False, eq=False)
    _record: Any = attrs.field(default=_UNSET, repr=False, eq=False, alias="record")

    @classmethod
    def make(
        cls,
        provider: str,
        id: str,
        subject: str | None,
        type: str,
        status: str | None,
        occurred_at: datetime,
        raw: Any,
        terminal: bool = False,
        record_type: builtins.type | None = None,
        record: Any = _UNSET,
    ) -> Event:
        """Build an event: ``Event(...)`` for ``parse_event``, the per-event hot path.

        The same function is the class's ``__new__`` (below the class); calling a class with
        keyword arguments costs CPython a dict per call (about half of what building an event
        costs), calling this method does not.

        A frozen attrs class sets each slot through ``object.__setattr__`` (a call per field);
        here the slots are filled by plain assignments on a twin class with the same slot
        layout, and the object then becomes an ``Event`` (``__class__`` assignment between
        layout-compatible classes). From then on it is frozen like any attrs frozen instance.
        """
        self: Any = _new_object(_EventSlots)
        self.provider = provider
        self.id = id
        self.subject = subject
        self.type = type
        self.status = status
        self.occurred_at = occurred_at
        self.raw = raw
        self.terminal = terminal
        self.record_type = record_type
        self._record = record
        self.__class__ = cls
        return self  # type: ignore[no-any-return]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("tidings.Event is not meant to be subclassed: put provider data in the typed record")

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: rebuild through the class call
        return (Event, (self.provider, self.id, self.subject, self.type, self.status, self.occurred_at, self.raw,
                        self.terminal, self.record_type, self._record))

    @property
    def record(self) -> Any:
        """The typed provider record (structured lazily, then cached)."""
        value = self._record
        if value is _UNSET:
            from tidings._convert import structure_record

            value = structure_record(self)
            object.__setattr__(self, "_record", value)
        return value

    def _repr_html_(self) -> str:
        """In Jupyter: the envelope and the typed record's fields as a small table."""
        from tidings._display import event_table

        return event_table(self)

    def to_json(self) -> dict[str, Any]:
        """The event as the CLI prints it: envelope keys plus ``raw``."""
        return {
            "provider": self.provider,
            "id": self.id,
            "subject": self.subject,
            "type": self.type,
            "status": self.status,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "terminal": self.terminal,
            "raw": self.raw,
        }


# ``Event(...)`` builds through ``Event.make``'s function. attrs wrote an __init__ (what type checkers and
# ``attrs.evolve`` read); __new__ already filled the slots, so the class call must not run it again: the
# inherited object.__init__ does nothing.
Event.__new__ = staticmethod(vars(Event)["make"].__func__)  # type: ignore[method-assign]
del Event.__init__
_new_object = object.__new__


class _EventSlots:
    """Event's slot layout without its frozen ``__setattr__``: where :meth:`Event.__new__` fills an event in."""

    __slots__ = Event.__slots__


@attrs.frozen(slots=True)
class DeadLetter:
    """A record set aside because it could not be parsed (or its handler failed)."""

    watch: str
    stream: str
    reason: str
    raw: Any
    at: datetime


_FIELDS = frozenset({"provider", "id", "subject", "type", "status", "occurred_at", "terminal"})


class EventList(list[Event]):
    """A list of events that renders as a table in Jupyter and as text elsewhere.

    Slices, :meth:`where` and :meth:`by_subject` give ``EventList`` again.
    ``interrupted`` is True when the run that collected them was interrupted
    (Ctrl-C, the kernel's interrupt): the list holds every event delivered, and
    the saved position is not past the last of them.
    """

    interrupted: bool

    def __init__(self, events: Iterable[Event] = (), *, interrupted: bool = False) -> None:
        super().__init__(events)
        self.interrupted = interrupted

    @overload  # type: ignore[override]
    def __getitem__(self, index: SupportsIndex) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> EventList: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Event | EventList:
        if isinstance(index, slice):
            return EventList(super().__getitem__(index))
        return super().__getitem__(index)

    def where(self, **fields: Any) -> EventList:
        """The events whose envelope fields equal the values given: ``events.where(status="delivered")``.

        A value that is a set, frozenset, list or tuple matches any of its members.
        """
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise TypeError(f"EventList.where: no field {', '.join(unknown)}; fields are {', '.join(sorted(_FIELDS))}")
        tests = [(name, set(v) if isinstance(v, (set, frozenset, list, tuple)) else {v}) for name, v in fields.items()]
        return EventList(e for e in self if all(getattr(e, name) in values for name, values in tests))

    def by_subject(self) -> dict[str | None, EventList]:
        """The events grouped by subject, in order of first appearance."""
        groups: dict[str | None, EventList] = {}
        for event in self:
            groups.setdefault(event.subject, EventList()).append(event)
        return groups

    def _note(self) -> str:
        return ", interrupted" if self.interrupted else ""

    def __str__(self) -> str:
        from tidings._display import text_table

        return text_table(self, self._note())

    def _repr_html_(self) -> str:
        from tidings._display import html_table

        return html_table(self, self._note())

    def to_pandas(self) -> Any:
        """A pandas DataFrame with typed columns (needs pandas, the ``notebook`` extra).

        ``occurred_at`` is ``datetime64[us, UTC]`` whatever the provider's precision,
        ``terminal`` bool, ``provider``/``type``/``status`` categorical, ``id``/``subject``
        strings, ``raw`` the provider's records as objects.
        """
        from tidings._display import to_pandas

        return to_pandas(self)

    def plot_over_time(self, freq: str | None = None, ax: Any = None) -> Any:
        """Events per time bucket, a line per type (matplotlib Axes; needs the ``notebook`` extra)."""
        from tidings._plots import plot_over_time

        return plot_over_time(self, freq, ax)

    def plot_time_to_terminal(self, ax: Any = None) -> Any:
        """Per subject, first event to terminal event, as horizontal bars (matplotlib Axes)."""
        from tidings._plots import plot_time_to_terminal

        return plot_time_to_terminal(self, ax)

    def to_polars(self) -> Any:
        """The same typed columns as a polars DataFrame (needs polars)."""
        from tidings._display import to_polars

        return to_polars(self)

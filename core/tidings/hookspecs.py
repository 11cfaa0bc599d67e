"""The hook specifications: the whole contract between the core and a plugin.

Provider hooks (``provider_info`` through ``parse_webhook``) are ``firstresult``
and, for one watch, reach only that watch's provider plugin plus cross-cutting
plugins (which may wrap them with ``@hookimpl(wrapper=True)``). Every hook may
return a value or an awaitable: the core awaits what it gets. Implement only
the arguments you need; pluggy passes them by name.

Observer hooks (``watch_started`` to ``watch_finished``) are called on every plugin that
implements them, results ignored: metrics, tracing, recording.

Command hooks (``serve_metrics``) are called once by the ``tidings`` command, not per watch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import httpx
import pluggy

if TYPE_CHECKING:
    from tidings._context import WatchContext
    from tidings._models import DeadLetter, Event, Page, ProviderInfo, Push, Stream

hookspec = pluggy.HookspecMarker("tidings")
hookimpl = pluggy.HookimplMarker("tidings")

# -- provider hooks ---------------------------------------------------------


@hookspec(firstresult=True)
def provider_info() -> ProviderInfo:  # type: ignore[empty-body]
    """Describe the provider: its name, kind, cursor type, parameters and emulator.

    Called once per plugin when providers are listed or a watch is built. A plugin
    that implements it is a *provider plugin*; one that does not is cross-cutting.

    :return: a :class:`tidings.ProviderInfo` (not an awaitable).
    """


@hookspec(firstresult=True)
def make_auth(token: str | None, params: Mapping[str, Any], base_url: str) -> httpx.Auth | None:  # type: ignore[empty-body]
    """Build this provider's authentication from the token, parameters and base URL.

    Called at the start of each run of a watch that was not given an ``auth`` object. Return None for
    the default: ``Authorization: Bearer <token>`` when a token was given, else no auth.
    Use it for OAuth2 client credentials (``--param client_id=…``; ``base_url`` lets you
    derive the token URL), Basic, or an API-key header.

    :return: an ``httpx.Auth`` (see :class:`tidings.OAuth2ClientCredentials` and friends) or None.
    """


@hookspec(firstresult=True)
def start(ctx: WatchContext) -> Sequence[Stream] | Awaitable[Sequence[Stream]] | None:  # type: ignore[empty-body]
    """Start the asynchronous work a tracker follows, and say which streams to follow.

    Called once when a watch begins and its store holds no unfinished streams:
    POST a session, subscribe a queue and trigger a sync, submit a bulk call, or
    just read the ids to follow from ``ctx.params``. Not called on resume. A
    :class:`tidings.TransientError` it raises is retried like a fetch (so make the
    work idempotent, or recognise the answer a retried request gets).

    :param ctx: the watch (``ctx.stream`` is ``Stream("")``).
    :return: the streams (each with the subjects it waits for), or None for one
        feed stream covering no subjects. May be an awaitable.
    """


@hookspec(firstresult=True)
def initial_cursor(ctx: WatchContext) -> Any:  # type: ignore[empty-body]
    """The cursor of a stream that has never been saved.

    :param ctx: the stream (``ctx.after`` is the user's ``--after``, or None).
    :return: an instance of ``ProviderInfo.cursor_type``. May be an awaitable.
    """


@hookspec(firstresult=True)
def fetch_page(ctx: WatchContext, cursor: Any) -> Page | Awaitable[Page]:  # type: ignore[empty-body]
    """Fetch the next page of raw records from where ``cursor`` says we are.

    Use ``ctx.http`` (it keeps to the configured host, caps bodies and turns
    429/5xx/connect faults into :class:`tidings.TransientError`, which the core
    retries with backoff). Raise :class:`tidings.TransientError` yourself for a
    retryable error code inside a 200 body.

    :param cursor: the saved position; the engine never looks inside it.
    :return: a :class:`tidings.Page`; usually an awaitable (``async def``).
    """


@hookspec(firstresult=True)
def parse_event(ctx: WatchContext, record: Any) -> Event | Awaitable[Event]:  # type: ignore[empty-body]
    """Turn one raw record into an :class:`tidings.Event`.

    Called once per record, on the hot path: read the envelope fields cheaply, let
    the typed record be built lazily (``record_type=``), and build the event with
    ``Event.make(...)`` (a class call with keywords costs a dict per call). A plain
    function lets a feed's page be parsed in one C-level loop; ``async def`` works,
    record by record.

    :raises tidings.ParseError: the record is dead-lettered with the reason and the feed goes on.
    """


@hookspec(firstresult=True)
def checkpoint(ctx: WatchContext, cursor: Any, event: Event) -> Any:  # type: ignore[empty-body]
    """The position to save once ``event`` has been delivered.

    Called for every newly delivered event, folding it into the running cursor
    (for example the greatest time delivered, or the last queue event id). The
    cursor the page was fetched with, folded with the events delivered so far, must
    be a valid place to resume: a re-read is fine, de-duplication removes it.
    Runs once per event: return ``cursor`` itself when nothing changed.

    :return: the new cursor (do not mutate the old one).
    """


@hookspec(firstresult=True)
def checkpoint_page(ctx: WatchContext, cursor: Any, events: Sequence[Event]) -> Any:  # type: ignore[empty-body]
    """Optional: the position to save once ``events`` (a page's new events, in order) were delivered.

    A faster twin of :func:`checkpoint`: when a provider implements it, the core calls it once per
    page *instead of* ``checkpoint`` once per event, so a page that moves the cursor once builds one
    cursor. It must return what folding ``checkpoint`` over ``events`` would. ``events`` is never
    empty; when the consumer stopped mid-page it holds only the events delivered.

    :return: the new cursor (do not mutate the old one). May be an awaitable.
    """


@hookspec(firstresult=True)
def is_terminal(ctx: WatchContext, event: Event) -> bool | None:  # type: ignore[empty-body]
    """Does ``event`` end the watch of its subject (AllDone, Failed, SYNC_ALL_SUCCESS...)?

    Called for every newly delivered event. A feed's provider need not implement it.

    :return: True if it ends ``event.subject``; False or None otherwise.
    """


@hookspec(firstresult=True)
def verify_webhook(ctx: WatchContext, headers: Mapping[str, str], body: bytes, secret: str) -> bool | None:  # type: ignore[empty-body]
    """Verify a webhook's signature.

    Called by the webhook receiver before ``parse_webhook`` when it was given a
    secret. Return None to use the core's Standard Webhooks verification.

    :return: True to accept, False to refuse with 401, None for the default.
    """


@hookspec(firstresult=True)
def parse_webhook(ctx: WatchContext, headers: Mapping[str, str], body: bytes) -> Sequence[Push] | None:  # type: ignore[empty-body]
    """Turn a verified webhook into work for the running watch.

    :return: :class:`tidings.Push` items: a record to deliver, or a request that a
        stream polls at once. May be an awaitable.
    :raises tidings.ParseError: the receiver answers 400.
    """


# -- observer hooks (every implementation is called) ------------------------


@hookspec
def watch_started(ctx: WatchContext) -> None:
    """A watch began (after ``start``, before the first fetch)."""


@hookspec
def page_read(ctx: WatchContext, records: int, new: int, duplicates: int, dead_letters: int, seconds: float) -> None:
    """A page was fetched, parsed and de-duplicated; its new events are about to be delivered.

    :param records: how many raw records the page held.
    :param new: how many of them are new events (to be delivered).
    :param duplicates: how many were removed as already delivered.
    :param dead_letters: how many were set aside (they could not be parsed).
    :param seconds: the fetch's wall time, retries and their waits included.
    """


@hookspec
def fetch_retried(ctx: WatchContext, error: BaseException, attempt: int, wait: float) -> None:
    """A fetch, a ``start`` or a ``ctx.retry`` call failed with a transient error and will be tried again.

    Called before the core waits. ``ctx.stream`` is the stream fetching (``Stream("")`` for
    ``start`` and ``ctx.retry`` calls).

    :param error: the :class:`tidings.TransientError` the attempt raised.
    :param attempt: the number of the attempt that failed (1 for the first).
    :param wait: the seconds the core will wait before the next attempt (at least any ``Retry-After``).
    """


@hookspec
def page_committed(ctx: WatchContext, cursor: Any, events: Sequence[Event]) -> None:
    """A page's events were delivered and ``cursor`` was saved."""


@hookspec
def subjects_open(ctx: WatchContext, subjects: int) -> None:
    """How many subjects of a tracker's stream ``ctx.stream`` have not ended yet.

    Called when the stream begins (new or resumed: the subjects that ended in an earlier run
    are not counted), and after each commit that ended some (0 when the last one ended).
    Never called for a feed's stream, which covers no subjects.

    :param subjects: the number still open.
    """


@hookspec
def record_dead_lettered(ctx: WatchContext, letter: DeadLetter) -> None:
    """A record was set aside (it could not be parsed, or its handler failed)."""


@hookspec
def stream_ended(ctx: WatchContext) -> None:
    """Every subject of ``ctx.stream`` ended (a tracker's id, session or queue is done)."""


@hookspec
def watch_finished(ctx: WatchContext, error: BaseException | None) -> None:
    """A watch ended: every subject ended, it was stopped, or ``error`` ended it."""


# -- command hooks (called once by the ``tidings`` command) -------------------


@hookspec(firstresult=True)
def serve_metrics(host: str, port: int) -> AbstractContextManager[str] | None:
    """Serve this process's metrics for scraping while ``tidings follow --metrics-port`` runs.

    :param host: the address to listen on (``127.0.0.1`` unless the user gave ``HOST:PORT``).
    :param port: the port (0 picks a free one).
    :return: a context manager that serves from entering it until leaving it and gives the URL
        to scrape, or None when this plugin serves no metrics (the next one is asked).
    """

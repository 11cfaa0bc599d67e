"""A stream's state and run: its inbox, fetching a page, settling what was delivered, committing.

A :class:`StreamRun` gets its collaborators passed in (the stream's context, the provider's
hooks, the store, the polling and retry settings, the stats and the stop signal); it never
sees the ``Watch``. Its :meth:`StreamRun.pages` generator is the one source of pages that
:mod:`tidings._delivery` hands to a handler or an iterator.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio
import attrs

from tidings._context import WatchContext
from tidings._convert import converter
from tidings._errors import PluginError
from tidings._models import DeadLetter, Event, Page
from tidings._page import Fold, NewEvents, Parsing, per_event_fold, per_page_fold, read_page
from tidings._plugins import ProviderHooks
from tidings._recent import RecentIds
from tidings._retry import OnRetry, RetryPolicy
from tidings._stats import WatchStats
from tidings._store import CheckpointStore, EventSink

__all__ = ["Delivered", "Inbox", "Polling", "StopSignal", "StreamRun", "retry_observer"]


class Delivered(Exception):  # a message to the page generator, not an error
    """Thrown into :meth:`StreamRun.pages`: the consumer stopped after ``count`` events of the page."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


class StopSignal:
    """A watch's stop request: a flag the loops read, and the waits it cuts short."""

    def __init__(self) -> None:
        self.requested = False
        self._waits: set[anyio.CancelScope] = set()

    def request(self) -> None:
        self.requested = True
        for scope in list(self._waits):
            scope.cancel()

    def reset(self) -> None:
        self.requested = False

    def add(self, scope: anyio.CancelScope) -> None:
        self._waits.add(scope)

    def discard(self, scope: anyio.CancelScope) -> None:
        self._waits.discard(scope)


@attrs.frozen
class Polling:
    """When a stream polls again.

    :param interval: the wait after a poll that found new events.
    :param max_interval: the longest wait between idle polls (the wait doubles while idle).
    :param until_idle: end the stream once a poll brings nothing new.
    :param dedup_window: how many recently delivered ids the stream keeps.
    """

    interval: float = 1.0
    max_interval: float = 30.0
    until_idle: bool = False
    dedup_window: int = 10_000


_POKE = object()


class Inbox:
    """Records handed to a stream from outside its loop (webhooks), and requests to poll at once."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.wake: anyio.Event | None = None

    def put(self, record: Any = None) -> None:
        self.items.append(_POKE if record is None else record)
        if self.wake is not None:
            self.wake.set()

    def take(self) -> tuple[list[Any], bool]:
        """The records waiting, and whether a poll was asked for."""
        items, self.items = self.items, []
        records = [r for r in items if r is not _POKE]
        return records, len(records) != len(items)


def retry_observer(hooks: ProviderHooks, stats: WatchStats, ctx: Callable[[], WatchContext]) -> OnRetry:
    """Count a retry and tell the ``fetch_retried`` observers (``ctx()``: the context to give them)."""

    async def on_retry(error: BaseException, attempt: int, wait: float) -> None:
        stats.retries += 1
        if hooks.observes("fetch_retried"):
            await hooks.observe("fetch_retried", ctx=ctx(), error=error, attempt=attempt, wait=wait)

    return on_retry


class StreamRun:
    """One stream's loop and state: where it is, what it delivered lately, what is still open."""

    def __init__(
        self,
        *,
        ctx: WatchContext,
        hooks: ProviderHooks,
        store: CheckpointStore,
        watch: str,
        store_key: str,
        cursor: Any,
        state: Mapping[str, Any] | None,
        polling: Polling,
        retry: RetryPolicy,
        stats: WatchStats,
        stop: StopSignal,
    ) -> None:
        self.ctx = ctx
        self.key = ctx.stream.key
        self.hooks = hooks
        self.store = store
        self.sink: EventSink | None = store if isinstance(store, EventSink) else None
        self.watch = watch
        self.store_key = store_key
        self.cursor = cursor
        state = state or {}
        self.recent = RecentIds(state.get("ids", ()), polling.dedup_window)
        saved_open = state.get("open")
        subjects = ctx.stream.subjects
        self.open: set[str] | None = (
            set(saved_open) if saved_open is not None else None if subjects is None else set(subjects)
        )
        self.ended = bool(state.get("ended"))
        self.polling = polling
        self.retry = retry
        self.on_retry = retry_observer(hooks, stats, lambda: ctx)
        self.stats = stats
        self.stop = stop
        self.inbox = Inbox()
        self.letters: list[DeadLetter] = []  # set aside since the last commit
        self._set_aside: set[str] = set()  # this run's dead letters, so a re-read does not repeat them
        self._fetch_seconds = 0.0  # the last page's fetch, retries included (0 for records from the inbox)
        self._open_told = -1  # the open subjects the observers last heard of
        self._parsing = Parsing(
            parse=hooks.bound("parse_event", ctx),
            terminal=hooks.bound("is_terminal", ctx) if hooks.implements("is_terminal") else None,
            plain=hooks.plain("parse_event"),
        )
        self._fold: Fold = (
            per_page_fold(hooks.bound("checkpoint_page", ctx)) if hooks.implements("checkpoint_page")
            else per_event_fold(hooks.bound("checkpoint", ctx), hooks.info.cursor_type)
        )

    def dead_letter(self, reason: str, raw: Any) -> bool:
        """Set a record aside (once: an overlap re-read of the same record is not counted again)."""
        key = json.dumps([reason, raw], sort_keys=True, default=str)
        if key in self._set_aside:
            return False
        self._set_aside.add(key)
        self.letters.append(
            DeadLetter(watch=self.watch, stream=self.key, reason=reason, raw=raw, at=datetime.now(timezone.utc))
        )
        self.stats.dead_letters += 1
        return True

    async def pages(self) -> AsyncGenerator[list[Event], int]:
        """Yield each page's new events; the consumer sends back how many it delivered.

        Fewer than all (sent, or thrown in as :class:`Delivered` when the consumer stops
        abruptly) means the consumer stopped: the delivered ones are settled and the
        generator ends. Pages without new events are settled without being yielded.
        """
        delay = backoff = 0.0
        hurried = False  # the poll under way was started at once, not after the interval
        found_new = False  # in this poll (a run of pages ending with one that has no `more`)
        await self._count_open()
        while not self.ended and not self.stop.requested:
            page = await self._next_page(delay)
            if page is None:
                break
            new = await self._read(page)
            offered = len(new.events)
            if self.sink is not None:  # the page is committed with its events before any is handed over
                await self._settle(page, new, offered)
            delivered = offered
            if offered:
                try:
                    delivered = yield new.events
                except Delivered as stop:
                    delivered = stop.count
            if self.sink is None:
                await self._settle(page, new, delivered)
            else:
                self.stats.delivered -= offered - delivered  # committed, yet not handed over
                if self.letters:  # a handler's failures, set aside during delivery
                    await self._commit(())
            if delivered < offered:
                return  # the consumer stopped
            found_new = found_new or delivered > 0
            if page.more:
                delay = 0.0
                continue
            if self.polling.until_idle and not found_new:
                break  # idle: a whole poll (its overlap re-read included) brought nothing new
            if self.polling.until_idle and not hurried:
                # confirm idleness at once (an --until-idle run does not sleep before its last poll);
                # a feed that keeps bringing new events is then polled at the interval again
                delay, hurried = 0.0, True
            else:
                hurried = False
                backoff = (
                    self.polling.interval if found_new
                    else min(max(backoff * 2, self.polling.interval), self.polling.max_interval)
                )
                delay = backoff
            found_new = False

    async def _read(self, page: Page) -> NewEvents:
        """The page's new events; its unparseable records set aside; ``page_read`` told."""
        self.stats.pages += 1
        new = await read_page(page.records, self._parsing, self.recent, self.open)
        letters = sum(self.dead_letter(reason, record) for reason, record in new.unparsed)
        self.stats.duplicates += new.duplicates
        if self.hooks.observes("page_read"):
            await self.hooks.observe(
                "page_read", ctx=self.ctx, records=len(page.records), new=len(new.events),
                duplicates=new.duplicates, dead_letters=letters, seconds=self._fetch_seconds,
            )
        return new

    async def _settle(self, page: Page, new: NewEvents, delivered: int) -> None:
        """Fold the first ``delivered`` events into the cursor and commit (the page's advance if all were)."""
        events: Sequence[Event] = new.events if delivered == len(new.events) else new.events[:delivered]
        self.recent.fresh.extend(new.ids if delivered == len(new.ids) else new.ids[:delivered])
        running = await self._fold(self.cursor, events)
        if self.open is not None:
            for event in events:
                if event.terminal:
                    self.open.discard(event.subject)  # type: ignore[arg-type]
        self.stats.delivered += delivered
        if delivered == len(new.events) and not new.ends_stream:
            self.cursor = page.advance(running) if page.advance is not None else running
            if self.open is not None and page.ended:
                self.open -= page.ended
        else:
            self.cursor = running
        if self.open is not None and not self.open:
            self.ended = True
            self.stats.streams_ended += 1
        if delivered or self.letters or page.advance is not None or page.ended or self.ended:
            await self._commit(events)
        if self.ended:
            with anyio.CancelScope(shield=True):
                await self.hooks.observe("stream_ended", ctx=self.ctx)

    def _state(self) -> dict[str, Any]:
        return {
            "cursor": converter.unstructure(self.cursor),
            "open": None if self.open is None else sorted(self.open),
            "ended": self.ended,
        }

    async def _commit(self, events: Sequence[Event]) -> None:
        letters, self.letters = self.letters, []
        window = self.polling.dedup_window
        with anyio.CancelScope(shield=True):
            if self.sink is not None:
                await self.sink.commit_events(
                    self.watch, self.store_key, self._state(), letters, self.recent.take_fresh(), window, events
                )
            else:
                await self.store.commit(
                    self.watch, self.store_key, self._state(), letters, self.recent.take_fresh(), window
                )
        for letter in letters:
            await self.hooks.observe("record_dead_lettered", ctx=self.ctx, letter=letter)
        if self.hooks.observes("page_committed"):
            await self.hooks.observe("page_committed", ctx=self.ctx, cursor=self.cursor, events=events)
        await self._count_open()

    async def _count_open(self) -> None:
        """Tell the ``subjects_open`` observers how many subjects are open, if that changed."""
        if self.open is not None and len(self.open) != self._open_told and self.hooks.observes("subjects_open"):
            self._open_told = len(self.open)
            await self.hooks.observe("subjects_open", ctx=self.ctx, subjects=self._open_told)

    async def _fetch(self) -> Page:
        fetch = self.hooks.caller("fetch_page")
        began = time.monotonic()
        page = await self.retry.call(lambda: fetch(ctx=self.ctx, cursor=self.cursor), self.on_retry)
        self._fetch_seconds = time.monotonic() - began
        if not isinstance(page, Page):
            raise PluginError(
                f"fetch_page must return tidings.Page, got {type(page).__name__}", provider=self.ctx.provider
            )
        return page

    async def _next_page(self, delay: float) -> Page | None:
        """The inbox's records, or (after ``delay``, cut short by a push or a poll request) a fetch.

        None when the watch was stopped meanwhile.
        """
        records, poke = self.inbox.take()
        if records:
            self._fetch_seconds = 0.0
            return Page(records=records)
        if poke:
            delay = 0
        with anyio.CancelScope() as scope:
            self.stop.add(scope)
            try:
                if delay > 0:
                    self.inbox.wake = anyio.Event()
                    with anyio.move_on_after(delay):
                        await self.inbox.wake.wait()
                    self.inbox.wake = None
                    if self.inbox.items:
                        return await self._next_page(0)
                return await self._fetch()
            finally:
                self.stop.discard(scope)
        return None  # cancelled by a stop request

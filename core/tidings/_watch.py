"""The engine: a Watch follows one provider feed or tracker, delivering each event once.

Delivery promise. Each stream runs as an async generator: an event counts as
delivered when the consumer comes back for the next one (the handler returned,
or the ``async for`` body finished). Cursor, recently delivered ids and dead
letters are committed together once per page; if the watch stops mid-page
(stop request, handler error, cancellation) the events delivered so far are
committed before it exits, and a killed process re-reads at most the page in
progress, whose already-committed events the recent ids remove.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import operator
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
import httpx
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type, stop_after_attempt

from tidings._auth import BearerToken
from tidings._context import WatchContext
from tidings._convert import converter, user_time
from tidings._errors import (
    ConfigurationError,
    HandlerError,
    ParseError,
    PluginError,
    RetriesExhausted,
    StoreError,
    TidingsError,
    TransientError,
    safe_url,
)
from tidings._http import HTTP
from tidings._models import DeadLetter, Event, Page, Stream
from tidings._plugins import ProviderHooks, await_me_maybe
from tidings._plugins import provider as _provider_entry
from tidings._store import CheckpointStore, MemoryStore

__all__ = ["Watch", "WatchStats", "follow_all"]

Handler = Callable[[Event], Any]


class RecentIds:
    """The ids delivered most recently (at least ``capacity`` of them), and those not yet committed.

    Two generations of sets: ids go into ``current``; when it holds ``capacity`` it becomes
    ``previous`` and a new ``current`` starts, dropping the old ``previous`` whole. So the newest
    ``capacity`` ids are always known, at most about twice that are held, and nothing is ever
    trimmed one id at a time. A page whose ids are all new is taken with set operations in C.
    """

    __slots__ = ("capacity", "current", "fresh", "previous")

    def __init__(self, ids: Iterable[str] = (), capacity: int = 10_000) -> None:
        self.capacity = capacity
        newest = list(ids)[-capacity:]  # the store's ids, oldest first
        self.previous: set[str] = set(newest)
        self.current: set[str] = set()
        self.fresh: list[str] = []  # delivered since the last commit, in order

    def __contains__(self, item: str) -> bool:
        return item in self.current or item in self.previous

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def add(self, item: str) -> None:
        self.current.add(item)
        self._rotate_when_full()

    def add_page(self, ids: list[str]) -> bool:
        """Take every id of a page if none was seen before and none repeats; else take none, return False."""
        page = set(ids)
        if len(page) != len(ids) or not self.current.isdisjoint(page) or not self.previous.isdisjoint(page):
            return False
        self.current |= page
        self._rotate_when_full()
        return True

    def _rotate_when_full(self) -> None:
        if len(self.current) >= self.capacity:
            self.previous, self.current = self.current, set()

    def take_fresh(self) -> list[str]:
        """The ids delivered since the last call (they go with the next commit)."""
        fresh, self.fresh = self.fresh, []
        return fresh


@attrs.define
class WatchStats:
    """What a watch did (``Watch.stats``): shown by the CLI's summary."""

    delivered: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    pages: int = 0
    retries: int = 0
    streams: int = 0
    streams_ended: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class _StreamRun:
    """One stream's loop and state."""

    def __init__(self, watch: Watch, ctx: WatchContext, state: Mapping[str, Any] | None, cursor: Any) -> None:
        self.watch = watch
        self.ctx = ctx
        self.key = ctx.stream.key
        self.cursor = cursor
        state = state or {}
        self.recent = RecentIds(state.get("ids", ()), watch.dedup_window)
        saved_open = state.get("open")
        if saved_open is not None:
            self.open: set[str] | None = set(saved_open)
        elif ctx.stream.subjects is not None:
            self.open = set(ctx.stream.subjects)
        else:
            self.open = None
        self.ended = bool(state.get("ended"))
        self.pushed: list[Any] = []
        self.letters: list[DeadLetter] = []  # set aside since the last commit
        self.set_aside: set[str] = set()  # this run's dead letters, so a re-read does not repeat them
        self.wake: anyio.Event | None = None
        self.fetch_seconds = 0.0  # the last page's fetch, retries included (0 for pushed records)
        self.open_told = -1  # the open subjects the observers last heard of

    def poke(self, record: Any = None) -> None:
        if record is not None:
            self.pushed.append(record)
        else:
            self.pushed.append(_POKE)
        if self.wake is not None:
            self.wake.set()

    def _state(self) -> dict[str, Any]:
        return {
            "cursor": converter.unstructure(self.cursor),
            "open": None if self.open is None else sorted(self.open),
            "ended": self.ended,
        }

    async def _commit(self, events: Sequence[Event]) -> None:
        letters, self.letters = self.letters, []
        watch = self.watch
        with anyio.CancelScope(shield=True):
            await watch.store.commit(
                watch.name, watch._store_key(self.key), self._state(), letters, self.recent.take_fresh(),
                watch.dedup_window,
            )
        for letter in letters:
            await self.watch._hooks.observe("record_dead_lettered", ctx=self.ctx, letter=letter)
        await self.watch._hooks.observe("page_committed", ctx=self.ctx, cursor=self.cursor, events=events)
        await self._count_open()

    async def _count_open(self) -> None:
        """Tell the ``subjects_open`` observers how many subjects are open, if that changed."""
        if self.open is not None and len(self.open) != self.open_told and self.watch._hooks.observes("subjects_open"):
            self.open_told = len(self.open)
            await self.watch._hooks.observe("subjects_open", ctx=self.ctx, subjects=self.open_told)

    def dead_letter(self, reason: str, raw: Any) -> None:
        """Set a record aside (once: an overlap re-read of the same record is not counted again)."""
        key = json.dumps([reason, raw], sort_keys=True, default=str)
        if key in self.set_aside:
            return
        self.set_aside.add(key)
        self.letters.append(
            DeadLetter(watch=self.watch.name, stream=self.key, reason=reason, raw=raw, at=datetime.now(timezone.utc))
        )
        self.watch.stats.dead_letters += 1

    async def _fetch(self) -> Page:
        fetch = self.watch._hooks.caller("fetch_page")
        began = time.monotonic()
        page = await self.watch._retrying(lambda: fetch(ctx=self.ctx, cursor=self.cursor), self.ctx)
        self.fetch_seconds = time.monotonic() - began
        if not isinstance(page, Page):
            raise PluginError(
                f"fetch_page must return tidings.Page, got {type(page).__name__}", provider=self.watch.provider
            )
        return page

    async def _next_page(self, delay: float) -> Page | None:
        """Wait ``delay`` (or until poked or stopped), then fetch. None when stopped."""
        if self.pushed:
            records = [r for r in self.pushed if r is not _POKE]
            poke = len(records) != len(self.pushed)
            self.pushed = []
            if records:
                self.fetch_seconds = 0.0
                return Page(records=records)
            if poke:
                delay = 0
        with anyio.CancelScope() as scope:
            self.watch._waiting.add(scope)
            try:
                if delay > 0:
                    self.wake = anyio.Event()
                    with anyio.move_on_after(delay):
                        await self.wake.wait()
                    self.wake = None
                    if self.pushed:
                        return await self._next_page(0)
                return await self._fetch()
            finally:
                self.watch._waiting.discard(scope)
        return None  # cancelled by stop()

    async def batches(self) -> AsyncGenerator[list[Event], int]:
        """Yield each page's new events; the consumer sends back how many it delivered.

        Fewer than all (sent, or thrown in as :class:`_Delivered` when the consumer stops
        abruptly) means the consumer stopped: the delivered ones are folded into the cursor
        and committed, and the generator ends. A full page is committed with ``page.advance``.
        """
        watch = self.watch
        hooks = watch._hooks
        ctx = self.ctx
        parse = hooks.bound("parse_event", ctx)
        fold = hooks.bound("checkpoint", ctx)
        terminal = hooks.bound("is_terminal", ctx) if hooks.implements("is_terminal") else None
        whole_pages = hooks.plain("parse_event")
        keep_events = hooks.observes("page_committed")
        observe_reads = hooks.observes("page_read")
        cursor_type = watch.info.cursor_type
        recent = self.recent
        stats = watch.stats
        delay = backoff = 0.0
        poll_found_new = False
        page: Page | None = None
        batch: list[Event] = []
        ids: list[str] = []
        await self._count_open()
        while not self.ended and not watch._stopping:
            # let the last page go before the next is fetched: its memory is reused while decoding,
            # and the garbage collector does not walk it again
            page = None
            batch, ids = [], []
            page = await self._next_page(delay)
            if page is None:
                break
            stats.pages += 1
            if observe_reads:
                seen = stats.duplicates, stats.dead_letters
            batch, ids, ends_here = await self._new_events(page, parse, terminal, whole_pages)
            if observe_reads:
                await hooks.observe(
                    "page_read", ctx=ctx, records=len(page.records), new=len(batch),
                    duplicates=stats.duplicates - seen[0], dead_letters=stats.dead_letters - seen[1],
                    seconds=self.fetch_seconds,
                )
            delivered = offered = len(batch)
            if batch:
                try:
                    delivered = yield batch
                except _Delivered as stop:
                    delivered = stop.count
            if delivered < offered:  # the consumer stopped: this stream ends after this commit, so the ids
                batch, ids = batch[:delivered], ids[:delivered]  # of the rest, taken when parsed, go nowhere
            recent.fresh.extend(ids)
            running = self.cursor
            for event in batch:
                running = fold(running, event)
                if running.__class__ is not cursor_type:
                    running = await _settle(running)
            if self.open is not None:
                for event in batch:
                    if event.terminal:
                        self.open.discard(event.subject)  # type: ignore[arg-type]
            stats.delivered += delivered
            complete = delivered == offered and not ends_here
            if complete:
                self.cursor = page.advance(running) if page.advance is not None else running
                if self.open is not None and page.ended:
                    self.open -= page.ended
            else:
                self.cursor = running
            if self.open is not None and not self.open:
                self.ended = True
                stats.streams_ended += 1
            if delivered or self.letters or page.advance is not None or page.ended or self.ended:
                await self._commit(batch if keep_events else ())
            if self.ended:
                with anyio.CancelScope(shield=True):
                    await hooks.observe("stream_ended", ctx=ctx)
            if delivered < offered:
                return  # the consumer stopped
            # a poll is a run of pages ending with one that has no `more`
            poll_found_new = poll_found_new or delivered > 0
            if page.more:
                delay = 0.0
                continue
            if not poll_found_new and watch.until_idle:
                break
            backoff = watch.interval if poll_found_new else min(max(backoff * 2, watch.interval), watch.max_interval)
            delay = backoff
            poll_found_new = False

    async def _new_events(
        self, page: Page, parse: Callable[..., Any], terminal: Callable[..., Any] | None, whole_pages: bool
    ) -> tuple[list[Event], list[str], bool]:
        """Parse a page: new events only (dead-letter the unparseable), cut after the one that ends the stream.

        The ids of the events returned are added to the recent ids at once. A feed's page whose
        ``parse_event`` is a plain function is parsed and de-duplicated with C-level loops (``map``,
        set operations); a tracker's is read one record at a time, since nothing after the event
        that ends it is read.

        :return: the events, their ids, and whether the stream ends with the last of them.
        """
        records = page.records
        if not isinstance(records, (list, tuple)):  # indexed below (a ParseError's record)
            records = list(records)
        recent = self.recent
        if whole_pages and self.open is None:
            events = self._parse_page(records, parse)
            try:
                ids = list(map(_event_id, events))
            except AttributeError:  # an awaitable among them: read the page one record at a time
                for event in events:
                    if inspect.iscoroutine(event):
                        event.close()
            else:
                if terminal is None and recent.add_page(ids):  # the common case: every event is new
                    return events, ids, False
                batch: list[Event] = []
                batch_ids: list[str] = []
                for event in events:
                    await self._admit(event, recent, batch, batch_ids, terminal, None)
                return batch, batch_ids, False
        batch = []
        batch_ids = []
        still_open = None if self.open is None else set(self.open)
        for record in records:
            try:
                event = parse(record)
                if event.__class__ is not Event:
                    event = await _settle(event)
            except ParseError as exc:
                self.dead_letter(str(exc), record)
                continue
            if await self._admit(event, recent, batch, batch_ids, terminal, still_open):
                return batch, batch_ids, True  # every subject ended: nothing after this event belongs to the watch
        return batch, batch_ids, False

    def _parse_page(self, records: Sequence[Any], parse: Callable[[Any], Any]) -> list[Any]:
        """``parse`` over every record in a C-level loop; a ParseError sets its record aside and the loop goes on."""
        events: list[Any] = []
        rest = iter(records)
        failed = 0
        while True:
            try:
                events.extend(map(parse, rest))  # keeps what it appended when a record fails
                return events
            except ParseError as exc:
                self.dead_letter(str(exc), records[len(events) + failed])
                failed += 1

    async def _admit(
        self,
        event: Event,
        recent: RecentIds,
        batch: list[Event],
        ids: list[str],
        terminal: Callable[..., Any] | None,
        still_open: set[str] | None,
    ) -> bool:
        """Add ``event`` to the batch unless it was delivered already; True when it ends the stream."""
        event_id = event.id
        if event_id in recent:
            self.watch.stats.duplicates += 1
            return False
        recent.add(event_id)
        if terminal is not None and not event.terminal:
            verdict = terminal(event)
            if verdict is not None and verdict is not False and (verdict is True or await _settle(verdict)):
                event = attrs.evolve(event, terminal=True)
        batch.append(event)
        ids.append(event_id)
        if event.terminal and still_open is not None:
            still_open.discard(event.subject)  # type: ignore[arg-type]
            return not still_open
        return False

    async def events(self) -> AsyncGenerator[Event, None]:
        """This stream's new events one by one; an event is delivered when the next is asked for.

        One of the two consumers of :meth:`batches` (the other is ``Watch._drive``, which calls a
        handler without an async generator round trip per event, the hot path of ``Watch.run``).
        """
        watch = self.watch
        async with contextlib.aclosing(self.batches()) as batches:
            try:
                batch = await batches.__anext__()
            except StopAsyncIteration:
                return
            while True:
                delivered = 0
                try:
                    for event in batch:
                        yield event
                        delivered += 1
                        if watch._stopping:
                            break
                except BaseException:  # the consumer left (break, error, cancellation): `delivered` got through
                    with anyio.CancelScope(shield=True), contextlib.suppress(StopAsyncIteration):
                        await batches.athrow(_Delivered(delivered))
                    raise
                batch = []  # the delivered page need not outlive its commit
                try:
                    batch = await batches.asend(delivered)
                except StopAsyncIteration:
                    return


_event_id = operator.attrgetter("id")


class _Delivered(Exception):  # a message to the batch generator, not an error
    """Thrown into :meth:`_StreamRun.batches`: the consumer stopped after ``count`` events."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


async def _settle(value: Any) -> Any:
    """Await a hook's result if it is awaitable (hooks may be ``async def``)."""
    if inspect.isawaitable(value):
        return await value
    return value


_POKE = object()


class Watch:
    """Follow one provider: an async iterator of events, or a run with a handler.

    :param provider: the provider name (``tidings providers`` lists them).
    :param name: the watch name its cursors are stored under. Default: for a feed, the provider
        name (its params only shape how it is read); for a tracker, the provider name plus a short
        digest of the params, since they say what work is followed. A tracker whose streams all
        ended delivers nothing more under the same name: use a new name for new work.
    :param base_url: the provider's base URL (default: the plugin's production URL).
    :param token: a bearer token (or whatever the provider's ``make_auth`` makes of it).
    :param auth: an ``httpx.Auth`` to use instead of ``token``.
    :param params: provider parameters (``--param`` on the command line).
    :param store: a checkpoint store (default: a new :class:`MemoryStore`).
    :param after: where a new watch starts (a datetime or ISO-8601 text).
    :param interval: the poll interval when new events keep coming (seconds).
    :param max_interval: the longest wait between idle polls (backs off by doubling).
    :param until_idle: end a feed once a poll finds nothing new.
    :param dedup_window: how many recently delivered ids are kept per stream.
    :param overlap: seconds re-read before a saved time position (late events).
    :param on_handler_error: ``"stop"`` (save the position before the failing event and raise
        :class:`HandlerError`) or ``"dead-letter"`` (set the event aside and go on).
    :param max_retries: transient faults tolerated in a row per fetch.
    :param transport: an httpx transport (an in-process emulator), or ``client`` to share one.
    :param max_per_host: requests in flight to one host, across this watch's streams.
    :param webhook_url: the public URL where this watch's webhook receiver can be reached
        (``ctx.webhook_url``: a plugin's ``start`` puts it in the request that asks for webhooks),
        or None. :func:`tidings.webhooks.receive` sets it while it serves a receiver.
    """

    def __init__(
        self,
        provider: str,
        *,
        name: str | None = None,
        base_url: str | None = None,
        token: str | None = None,
        auth: httpx.Auth | None = None,
        params: Mapping[str, Any] | None = None,
        store: CheckpointStore | None = None,
        after: datetime | str | None = None,
        page_size: int | None = None,
        interval: float = 1.0,
        max_interval: float = 30.0,
        until_idle: bool = False,
        dedup_window: int = 10_000,
        overlap: float = 5.0,
        on_handler_error: Literal["stop", "dead-letter"] = "stop",
        max_retries: int = 8,
        retry_base_wait: float = 0.5,
        retry_max_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        max_per_host: int = 16,
        max_body_bytes: int | None = None,
        webhook_url: str | None = None,
    ) -> None:
        entry = _provider_entry(provider)
        self.entry = entry
        self.provider = entry.info.name
        self.info = entry.info
        self.params: dict[str, Any] = dict(params or {})
        self.name = name or default_name(self.provider, self.params if self.info.kind == "tracker" else {})
        base = base_url or entry.info.default_base_url
        if not base:
            raise ConfigurationError("no base URL: pass --base-url", provider=self.provider)
        self.base_url = base.rstrip("/")
        self._token = token
        self._auth = auth
        self.store: CheckpointStore = store if store is not None else MemoryStore()
        self.after = user_time(after) if isinstance(after, str) else after
        self.page_size = page_size
        if interval < 0 or max_interval < interval:
            raise ConfigurationError("interval must be >= 0 and no more than max_interval", provider=self.provider)
        self.interval = interval
        self.max_interval = max_interval
        self.until_idle = until_idle
        self.dedup_window = dedup_window
        self.overlap = overlap
        if on_handler_error not in ("stop", "dead-letter"):
            raise ConfigurationError("on_handler_error must be 'stop' or 'dead-letter'", provider=self.provider)
        self.on_handler_error = on_handler_error
        self.max_retries = max_retries
        self.retry_base_wait = retry_base_wait
        self.retry_max_wait = retry_max_wait
        self._transport = transport
        self._client = client
        self.max_per_host = max_per_host
        self.max_body_bytes = max_body_bytes
        self.webhook_url = webhook_url
        self.stats = WatchStats()
        self._hooks = ProviderHooks(entry)
        self._stopping = False
        self._waiting: set[anyio.CancelScope] = set()
        self._runs: dict[str, _StreamRun] = {}
        self._run_id = 0
        self._loop_token: Any = None
        self._loop_thread = 0
        self._handover_lock = threading.Lock()
        self._handing_over = 0  # pushes from other threads waiting for this watch's loop
        self.limiter: anyio.CapacityLimiter | None = None
        self.http: HTTP | None = None

    def __repr__(self) -> str:
        return f"Watch(provider={self.provider!r}, name={self.name!r}, base_url={safe_url(self.base_url)!r})"

    @property
    def kind(self) -> str:
        return self.info.kind

    def stop(self) -> None:
        """Stop after the delivery in progress; the position is saved.

        Call it from any task of the watch's event loop; from another thread, use
        ``anyio.from_thread.run_sync(watch.stop)``.
        """
        self._stopping = True
        for scope in list(self._waiting):
            scope.cancel()

    @property
    def running(self) -> bool:
        """True from the moment the streams are open (after ``start``) until the run ends."""
        return self._loop_token is not None

    def push(self, stream: str, record: Any = None) -> bool:
        """Hand a webhook's record to a running stream (or, with no record, make it poll now).

        Safe from any thread: from outside the watch's event loop thread (a webhook
        server in a thread of its own) the hand-over runs on the watch's loop, and the
        run does not end while a hand-over is on its way (so none waits on a dead loop).

        :return: False if no running stream has that key (or the watch is not running).
        """
        if threading.get_ident() == self._loop_thread:
            return self._push(stream, record)
        with self._handover_lock:
            token = self._loop_token
            if token is None:
                return False
            self._handing_over += 1
        try:
            return bool(anyio.from_thread.run_sync(self._push, stream, record, token=token))
        except RuntimeError:  # the loop has ended
            return False
        finally:
            with self._handover_lock:
                self._handing_over -= 1

    def _push(self, stream: str, record: Any = None) -> bool:
        run = self._runs.get(stream)
        if run is None:
            return False
        run.poke(record)
        return True

    def context(self, stream: Stream | None = None) -> WatchContext:
        if self.http is None:
            raise ConfigurationError("the watch is not running", provider=self.provider)
        return WatchContext(
            provider=self.provider,
            watch=self.name,
            stream=stream or Stream(),
            params=self.params,
            base_url=self.base_url,
            http=self.http,
            after=self.after,
            page_size=self.page_size,
            overlap=self.overlap,
            webhook_url=self.webhook_url,
            push=self.push,
            retry=self._retrying,
        )

    def _store_key(self, key: str) -> str:
        return f"{self._run_id}/{key}"

    async def dead_letters(self) -> list[DeadLetter]:
        """The records this watch set aside, with their reasons."""
        return await self.store.dead_letters(self.name)

    async def _retrying(self, call: Callable[[], Any], ctx: WatchContext | None = None) -> Any:
        """Call (and await) ``call`` until it stops raising TransientError, with jittered backoff.

        The wait doubles from ``retry_base_wait`` up to ``retry_max_wait`` (full jitter); a
        ``Retry-After`` the server sent is a floor. After ``max_retries`` retries: RetriesExhausted.
        The first attempt runs before any retry machinery is set up (most calls need no retry).
        Before each wait the ``fetch_retried`` observers hear of it (``ctx``: the stream's, or the
        watch's for ``start`` and ``ctx.retry``).
        """
        try:
            return await await_me_maybe(call())
        except TransientError as exc:
            first = exc
        if self.max_retries < 1:
            raise self._exhausted(first) from first

        def delay(attempt: int, exc: BaseException | None) -> float:
            """The wait after failed attempt number ``attempt``."""
            retry_after = getattr(exc, "retry_after", None) or 0.0
            backoff = min(self.retry_max_wait, self.retry_base_wait * 2 ** (attempt - 1))
            return max(float(retry_after), random.uniform(0, backoff))

        failed: list[Any] = [first, 1]  # the latest failure and its attempt number, for the observers

        def wait(state: RetryCallState) -> float:
            # tenacity numbers the attempts after the first from 1 again, hence the + 1
            failed[:] = [state.outcome.exception() if state.outcome else None, state.attempt_number + 1]
            return delay(failed[1], failed[0])

        async def sleep(seconds: float) -> None:
            self.stats.retries += 1
            if self._hooks.observes("fetch_retried"):
                await self._hooks.observe(
                    "fetch_retried", ctx=ctx or self.context(), error=failed[0], attempt=failed[1], wait=seconds
                )
            await anyio.sleep(seconds)

        # the first attempt failed above: wait as after attempt 1, then at most max_retries attempts more
        await sleep(delay(1, first))
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries),
            wait=wait,
            retry=retry_if_exception_type(TransientError),
            sleep=sleep,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    result = await await_me_maybe(call())
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise self._exhausted(last) from last
        return result

    def _exhausted(self, last: BaseException | None) -> RetriesExhausted:
        return RetriesExhausted(
            f"gave up after {self.max_retries + 1} attempts: {last}; the position is saved, run again to resume",
            provider=self.provider,
        )

    async def _make_auth(self) -> httpx.Auth | None:
        if self._auth is not None:
            return self._auth
        if self._hooks.implements("make_auth"):
            made = await await_me_maybe(
                self._hooks.caller("make_auth")(token=self._token, params=self.params, base_url=self.base_url)
            )
            if made is not None:
                return made  # type: ignore[no-any-return]
        return BearerToken(self._token) if self._token else None

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[list[_StreamRun]]:
        self._stopping = False
        self.stats = WatchStats()
        self._loop_thread = threading.get_ident()
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(self.max_per_host)
        http_kwargs: dict[str, Any] = {}
        if self.max_body_bytes is not None:
            http_kwargs["max_body_bytes"] = self.max_body_bytes
        self.http = HTTP(
            provider=self.provider,
            base_url=self.base_url,
            auth=await self._make_auth(),
            client=self._client,
            transport=self._transport,
            limiter=self.limiter,
            **http_kwargs,
        )
        error: BaseException | None = None
        try:
            runs = await self._open_streams()
            self._loop_token = anyio.lowlevel.current_token()  # running: pushes from other threads are taken
            await self._hooks.observe("watch_started", ctx=self.context())
            yield runs
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.stats.finished = time.monotonic()
            with self._handover_lock:
                self._loop_token = None  # no new hand-over from another thread from now on
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(10):
                    # those on their way need this loop to run: let them land (the count changes in other
                    # threads, which cannot set an anyio.Event of this loop)
                    while self._handing_over:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                self._runs = {}
                await self._hooks.observe("watch_finished", ctx=self.context(), error=error)
                await self.http.aclose()
                self.http = None

    async def _open_streams(self) -> list[_StreamRun]:
        saved = await self.store.load_streams(self.name)
        streams: list[Stream] | None = None
        if saved is not None:
            self._run_id = int(saved["run"])
            streams = [
                Stream(s["key"], None if s["subjects"] is None else frozenset(s["subjects"]), s.get("data") or {})
                for s in saved["streams"]
            ]
        if streams is None:
            self._run_id = int(saved["run"]) + 1 if saved is not None else 1
            started: Any = None
            if self._hooks.implements("start"):
                begin = self._hooks.caller("start")
                started = await self._retrying(lambda: begin(ctx=self.context()))
            streams = list(started) if started is not None else [Stream()]
            if not streams or not all(isinstance(s, Stream) for s in streams):
                raise PluginError("start must return a non-empty sequence of tidings.Stream", provider=self.provider)
            if self.info.kind == "tracker" and any(s.subjects is None for s in streams):
                raise PluginError("a tracker's streams must name their subjects", provider=self.provider)
            await self.store.save_streams(
                self.name,
                {
                    "run": self._run_id,
                    "streams": [
                        {"key": s.key, "subjects": None if s.subjects is None else sorted(s.subjects),
                         "data": dict(s.data)}
                        for s in streams
                    ],
                },
            )
        runs = []
        for stream in streams:
            ctx = self.context(stream)
            state = await self.store.load(self.name, self._store_key(stream.key))
            cursor: Any
            if state is not None:
                try:
                    cursor = converter.structure(state["cursor"], self.info.cursor_type)
                except Exception as exc:
                    raise StoreError(
                        f"the saved position of watch {self.name!r} does not fit {self.info.cursor_type.__name__} "
                        f"({exc}); use another --name or remove the checkpoint file",
                        provider=self.provider,
                    ) from exc
            elif self._hooks.implements("initial_cursor"):
                cursor = await await_me_maybe(self._hooks.caller("initial_cursor")(ctx=ctx))
            else:
                cursor = self.info.cursor_type()
            run = _StreamRun(self, ctx, state, cursor)
            if run.ended:
                continue
            runs.append(run)
            self._runs[stream.key] = run
        self.stats.streams = len(streams)
        self.stats.streams_ended = len(streams) - len(runs)
        return runs

    async def events(self) -> AsyncGenerator[Event, None]:
        """Every new event, as it is delivered.

        An event counts as delivered when you ask for the next one; if you leave the
        loop early, wrap the iterator in ``contextlib.aclosing`` so the position is
        saved at once (the event you broke on is delivered again next time).
        """
        async with self._session() as runs:
            if len(runs) == 1:
                async with contextlib.aclosing(runs[0].events()) as events:
                    async for event in events:
                        yield event
                return
            send, receive = anyio.create_memory_object_stream[tuple[Event, anyio.Event]](0)

            async def pump(run: _StreamRun) -> None:
                async with contextlib.aclosing(run.events()) as events:
                    async for event in events:
                        ack = anyio.Event()
                        await send.send((event, ack))
                        await ack.wait()

            async def pump_all() -> None:
                async with send:
                    async with anyio.create_task_group() as inner:
                        for run in runs:
                            inner.start_soon(pump, run)

            # The consumer leaving (GeneratorExit at the yield) must not cross the task group: it would
            # come out as an exception group. Leave the loop instead; the unacknowledged event counts as
            # not delivered, the pumps are cancelled and each stream saves what got through.
            # The pumps are cancelled before the receiving end closes, so none of them meets a closed
            # stream (BrokenResourceError) while it is handing an event over.
            try:
                with receive:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(pump_all)
                        async for event, ack in receive:
                            try:
                                yield event
                            except GeneratorExit:
                                break
                            ack.set()
                        tg.cancel_scope.cancel()
            except BaseExceptionGroup as group:
                raise _first_error(group)  # noqa: B904 - keeps the error's own cause

    async def run(self, handler: Handler) -> WatchStats:
        """Deliver every new event to ``handler`` (a function or coroutine function).

        A feed runs until :meth:`stop` (or ``until_idle``); a tracker until every
        subject ended. A handler exception stops the watch with the position of
        the last delivered event saved and raises :class:`HandlerError`, unless
        ``on_handler_error="dead-letter"``.
        """
        async with self._session() as runs:
            if len(runs) == 1:
                await self._drive(runs[0], handler)
            else:
                try:
                    async with anyio.create_task_group() as tg:
                        for run in runs:
                            tg.start_soon(self._drive, run, handler)
                except BaseExceptionGroup as group:
                    raise _first_error(group)  # noqa: B904 - keeps the error's own cause
        return self.stats

    async def _drive(self, run: _StreamRun, handler: Handler) -> None:
        """Deliver a stream's batches to ``handler``, telling the stream how many got through."""
        async with contextlib.aclosing(run.batches()) as batches:
            try:
                batch = await batches.__anext__()
            except StopAsyncIteration:
                return
            while True:
                delivered = 0
                try:
                    for event in batch:
                        try:
                            result = handler(event)
                            if result is not None and inspect.isawaitable(result):
                                await result
                        except Exception as exc:
                            if self.on_handler_error != "dead-letter":
                                raise HandlerError(
                                    f"the handler raised {type(exc).__name__} on event {event.id!r}; "
                                    "the position before it is saved: fix the handler and run again",
                                    provider=self.provider,
                                ) from exc
                            run.dead_letter(f"handler raised {type(exc).__name__}: {exc}", event.raw)
                        delivered += 1
                        if self._stopping:
                            break
                except BaseException:
                    with anyio.CancelScope(shield=True), contextlib.suppress(StopAsyncIteration):
                        await batches.athrow(_Delivered(delivered))
                    raise
                batch = []  # the delivered page need not outlive its commit
                try:
                    batch = await batches.asend(delivered)
                except StopAsyncIteration:
                    return

    async def collect(self, limit: int | None = None) -> list[Event]:
        """The events of a run (a tracker to its end, a feed until idle or ``limit`` events)."""
        from tidings._models import EventList

        out = EventList()
        if limit is not None and limit <= 0:
            return out
        until_idle = self.until_idle
        if self.info.kind == "feed" and limit is None:
            self.until_idle = True
        try:
            async with contextlib.aclosing(self.events()) as events:
                async for event in events:
                    out.append(event)
                    if limit is not None and len(out) >= limit:
                        self.stop()
        finally:
            self.until_idle = until_idle
        return out


def default_name(provider: str, params: Mapping[str, Any]) -> str:
    """``provider``, or ``provider-<digest of the params>`` when there are params."""
    if not params:
        return provider
    text = json.dumps(params, sort_keys=True, default=str)
    return f"{provider}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error that ended a task group (a TidingsError first), not the group around it."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    first = next((leaf for leaf in leaves if isinstance(leaf, TidingsError)), leaves[0] if leaves else group)
    first.__suppress_context__ = True  # its own __cause__ stays; the group around it is not shown
    return first


async def follow_all(watches: Sequence[Watch], handler: Handler, *, max_per_host: int = 16) -> list[WatchStats]:
    """Run many watches at once in one task group, sharing a request limit per host."""
    limiters: dict[str, anyio.CapacityLimiter] = {}
    for watch in watches:
        host = httpx.URL(watch.base_url).host
        watch.limiter = limiters.setdefault(host, anyio.CapacityLimiter(max_per_host))
    results: list[WatchStats] = [WatchStats() for _ in watches]

    async def one(i: int, watch: Watch) -> None:
        results[i] = await watch.run(handler)

    try:
        async with anyio.create_task_group() as tg:
            for i, watch in enumerate(watches):
                tg.start_soon(one, i, watch)
    except BaseExceptionGroup as group:
        raise _first_error(group)  # noqa: B904 - keeps the error's own cause
    return results

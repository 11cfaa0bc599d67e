"""The public ``Watch``: its options, a run's session (HTTP, streams restored or started), the three ways to consume.

A watch opens a session per run: it builds the HTTP client, restores its streams from the
store (or calls ``start``), and hands each stream's :class:`~tidings._stream.StreamRun` to
:mod:`tidings._delivery`, whose one loop hands the events over. Imports go one way:
``_watch`` → ``_delivery`` → ``_stream`` → ``_page`` → ``_recent``; ``_stream`` → ``_retry``;
``_watch`` → ``_restore``, ``_handoff``.

Delivery promise. An event counts as delivered when the consumer comes back for the next
one (the handler returned, or the ``async for`` body finished). Cursor, recently delivered
ids and dead letters are committed together once per page; if the watch stops mid-page
(stop request, handler error, cancellation) the events delivered so far are committed
before it exits, and a killed process re-reads at most the page in progress, whose
already-committed events the recent ids remove. With an :class:`~tidings.EventSink` store a
page is committed with its events before they are handed over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import anyio
import httpx

from tidings._auth import BearerToken
from tidings._collect import collect_into
from tidings._context import WatchContext
from tidings._convert import user_time
from tidings._delivery import Handler, deliver, first_error, merged_events
from tidings._errors import ConfigurationError, safe_url
from tidings._handoff import LoopHandoff
from tidings._http import HTTP
from tidings._models import DeadLetter, Event, EventList, Stream
from tidings._options import structure_options
from tidings._origin import Origin
from tidings._plugins import ProviderHooks, await_me_maybe
from tidings._plugins import provider as _provider_entry
from tidings._restore import restore_position, restore_streams
from tidings._retry import RetryPolicy
from tidings._stats import WatchStats
from tidings._store import CheckpointStore, MemoryStore
from tidings._stream import Polling, StopSignal, StreamRun, retry_observer
from tidings._transport import default_transport

__all__ = ["Handler", "Watch", "WatchStats", "follow_all"]



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
        Default: aiohttp's pool on asyncio when installed, httpcore connections otherwise, sized
        to ``max_per_host`` (``TIDINGS_HTTP_TRANSPORT`` chooses; see docs/performance.md).
    :param max_per_host: requests in flight to one host, across this watch's streams.
    :param request_deadline: seconds one request may take in all, body included (None: only the
        per-read timeout); a request over it is a transient fault, retried with backoff.
    :param webhook_url: the public URL where this watch's webhook receiver can be reached
        (``ctx.webhook_url``: a plugin's ``start`` puts it in the request that asks for webhooks),
        or None. :func:`tidings.webhooks.receive` sets it while it serves a receiver.
    :param rebase: resume a position saved against another base URL (it is refused otherwise:
        an offset or event id of one server means nothing on another); the new URL is recorded.
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
        request_deadline: float | None = 300.0,
        webhook_url: str | None = None,
        rebase: bool = False,
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
        self.request_deadline = request_deadline
        self.webhook_url = webhook_url
        self.origin, self.rebase = Origin.of(self.info, self.base_url, self.params), rebase
        self.options = structure_options(self.info, self.params)
        self.stats = WatchStats()
        self._hooks = ProviderHooks(entry)
        self._stop = StopSignal()
        self._runs: dict[str, StreamRun] = {}
        self._run_id = 0
        self._handoff = LoopHandoff()
        self.limiter: anyio.CapacityLimiter | None = None
        self.http: HTTP | None = None

    def __repr__(self) -> str:
        return f"Watch(provider={self.provider!r}, name={self.name!r}, base_url={safe_url(self.base_url)!r})"

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def hooks(self) -> ProviderHooks:
        """The provider's hooks as this watch calls them (its provider plus the cross-cutting plugins)."""
        return self._hooks

    @property
    def polling(self) -> Polling:
        """When the watch's streams poll again (read from the options as they are now)."""
        return Polling(self.interval, self.max_interval, self.until_idle, self.dedup_window)

    @property
    def retry_policy(self) -> RetryPolicy:
        """How transient faults are retried (read from the options as they are now)."""
        return RetryPolicy(self.max_retries, self.retry_base_wait, self.retry_max_wait, self.provider)

    def stop(self) -> None:
        """Stop after the delivery in progress; the position is saved.

        Call it from any task of the watch's event loop; from another thread, use
        ``anyio.from_thread.run_sync(watch.stop)``.
        """
        self._stop.request()

    @property
    def running(self) -> bool:
        """True from the moment the streams are open (after ``start``) until the run ends."""
        return self._handoff.open

    def push(self, stream: str, record: Any = None) -> bool:
        """Hand a webhook's record to a running stream (or, with no record, make it poll now).

        Safe from any thread: from outside the watch's event loop thread (a webhook
        server in a thread of its own) the hand-over runs on the watch's loop, and the
        run does not end while a hand-over is on its way (so none waits on a dead loop).

        :return: False if no running stream has that key (or the watch is not running).
        """
        return bool(self._handoff.call(self._push, stream, record, closed=False))

    def _push(self, stream: str, record: Any = None) -> bool:
        run = self._runs.get(stream)
        if run is None:
            return False
        run.inbox.put(record)
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
            options=self.options,
        )

    def _store_key(self, key: str) -> str:
        return f"{self._run_id}/{key}"

    async def dead_letters(self) -> list[DeadLetter]:
        """The records this watch set aside, with their reasons."""
        return await self.store.dead_letters(self.name)

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        """``ctx.retry`` and ``start``: the watch's retry policy, observers told with the watch's context."""
        return await self.retry_policy.call(call, retry_observer(self._hooks, self.stats, self.context))

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
    async def _session(self) -> AsyncIterator[list[StreamRun]]:
        self._stop.reset()
        self.stats = WatchStats()
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(self.max_per_host)
        http_kwargs: dict[str, Any] = {"deadline": self.request_deadline}
        if self.max_body_bytes is not None:
            http_kwargs["max_body_bytes"] = self.max_body_bytes
        transport = self._transport
        if transport is None and self._client is None:  # aiohttp's pool on asyncio, else httpcore's connections
            transport = default_transport(self.base_url, int(self.limiter.total_tokens))
        self.http = HTTP(
            provider=self.provider,
            base_url=self.base_url,
            auth=await self._make_auth(),
            client=self._client,
            transport=transport,
            limiter=self.limiter,
            **http_kwargs,
        )
        error: BaseException | None = None
        try:
            runs = await self._open_streams()
            self._handoff.begin()  # running: pushes from other threads are taken
            await self._hooks.observe("watch_started", ctx=self.context())
            yield runs
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.stats.finished = time.monotonic()
            await self._handoff.close()  # no new hand-over from another thread from now on
            with anyio.CancelScope(shield=True):
                self._runs = {}
                await self._hooks.observe("watch_finished", ctx=self.context(), error=error)
                await self.http.aclose()
                self.http = None

    async def _open_streams(self) -> list[StreamRun]:
        begin = self._hooks.caller("start") if self._hooks.implements("start") else None
        start = None if begin is None else lambda: self._retrying(lambda: begin(ctx=self.context()))
        self._run_id, streams = await restore_streams(
            self.store, self.name, self.info, start, self.origin, rebase=self.rebase
        )
        polling, retry = self.polling, self.retry_policy
        runs = []
        for stream in streams:
            ctx = self.context(stream)
            key = self._store_key(stream.key)
            cursor, state = await restore_position(self.store, self.name, key, self._hooks, ctx)
            run = StreamRun(
                ctx=ctx, hooks=self._hooks, store=self.store, watch=self.name, store_key=key,
                cursor=cursor, state=state, polling=polling, retry=retry, stats=self.stats, stop=self._stop,
            )
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
            async with contextlib.aclosing(merged_events(runs, self._stop)) as events:
                async for event in events:
                    yield event

    async def run(self, handler: Handler, *, on_page: Callable[[], None] | None = None) -> WatchStats:
        """Deliver every new event to ``handler`` (a function or coroutine function).

        A feed runs until :meth:`stop` (or ``until_idle``); a tracker until every
        subject ended. A handler exception stops the watch with the position of
        the last delivered event saved and raises :class:`HandlerError`, unless
        ``on_handler_error="dead-letter"``; :class:`Undeliverable` sets the event aside
        with its reason and goes on. ``on_page()`` is called after each page's events were
        handed to ``handler``, before the position after them is saved (a writer that
        batches flushes there; if it raises, the page counts as not delivered).
        """
        async with self._session() as runs:
            await deliver(
                runs, handler, self._stop, dead_letter_errors=self.on_handler_error == "dead-letter",
                provider=self.provider, on_page=on_page,
            )
        return self.stats

    async def collect(self, limit: int | None = None) -> EventList:
        """The events of a run (a tracker to its end, a feed until idle or ``limit`` events)."""
        return await collect_into(self, limit)


def default_name(provider: str, params: Mapping[str, Any]) -> str:
    """``provider``, or ``provider-<digest of the params>`` when there are params."""
    if not params:
        return provider
    text = json.dumps(params, sort_keys=True, default=str)
    return f"{provider}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


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
        raise first_error(group)  # noqa: B904 - keeps the error's own cause
    return results

"""Starting work once: each request of a tracker's ``start`` is journaled before it is sent and after it is answered.

A ``start`` that submits work (a bulk call, a session, a sync) must not submit it twice: not when
its answer is cut off on the way (the engine retries ``start`` on a transient fault), and not when
the process dies between the request and the first checkpoint. A plugin wraps each such request
in :func:`start_step`; the engine runs ``start`` inside :func:`journaled_start`, which keeps the
journal in the checkpoint store under the watch's streams record until the streams are known.

On a start run again (a retry, or a resume after a crash) a step already answered returns its
saved answer without a request; a step sent but never answered raises
:class:`~tidings.StartOutcomeUnknown` instead of being sent again: the plugin looks up what was
started where the API allows, or lets the error report the orphan.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from tidings._errors import (
    AuthenticationError,
    ProviderHTTPError,
    RetriesExhausted,
    StartOutcomeUnknown,
    TransientError,
)
from tidings._store import CheckpointStore

__all__ = ["journaled_start", "request_not_taken", "start_step"]

log = logging.getLogger("tidings")

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def request_not_taken(exc: BaseException) -> bool:
    """Did the request surely not take effect?

    Yes for a complete error answer (4xx, 5xx: the provider said it did not do it), a provider's
    retry code such as ``GLOBAL_1001``, a connection never made, and retries that ran out on
    those. No for the rest: a reset or a timeout after the request went out, a 2xx answer cut off.
    """
    if isinstance(exc, (ProviderHTTPError, AuthenticationError)):
        return True
    if isinstance(exc, RetriesExhausted):
        return exc.__cause__ is not None and request_not_taken(exc.__cause__)
    if isinstance(exc, TransientError) and (exc.status_code is not None or exc.code):
        return True
    return isinstance(exc.__cause__, _NOT_SENT)


class StartJournal:
    """The steps of one start: ``{key: {"sent": time}}`` before a request, ``{key: {"answer": …}}`` after."""

    def __init__(self, store: CheckpointStore, watch: str, run: int, steps: dict[str, Any] | None) -> None:
        self.store = store
        self.watch = watch
        self.run = run
        self.steps: dict[str, Any] = dict(steps or {})
        self._lock = anyio.Lock()

    async def _save(self) -> None:
        with anyio.CancelScope(shield=True):
            async with self._lock:
                await self.store.save_streams(self.watch, {"run": self.run, "streams": None, "start": self.steps})

    async def step(
        self, key: str, call: Callable[[], Awaitable[Any]], not_sent: Callable[[BaseException], bool]
    ) -> Any:
        entry = self.steps.get(key)
        if entry is not None:
            if "answer" in entry:
                return entry["answer"]
            log.warning("watch %r: start request %r was sent but never answered; not sending it again", self.watch, key)
            raise StartOutcomeUnknown(
                f"the start request {key!r} of watch {self.watch!r} was sent, but its answer never arrived "
                "(cut off, or the process stopped): it is not sent again, since it may have taken effect. "
                "Check the provider for what it started; run with a new --name to start afresh",
                step=key,
            )
        self.steps[key] = {"sent": time.time()}
        await self._save()
        try:
            answer = await call()
        except BaseException as exc:
            if not_sent(exc):  # the provider surely did nothing: the step may be sent again
                del self.steps[key]
                await self._save()
            raise
        self.steps[key] = {"answer": answer}
        await self._save()
        return answer


_journal: contextvars.ContextVar[StartJournal | None] = contextvars.ContextVar("tidings_start_journal", default=None)


async def start_step(
    key: str,
    call: Callable[[], Awaitable[Any]],
    *,
    not_sent: Callable[[BaseException], bool] = request_not_taken,
) -> Any:
    """Run one request of a tracker's ``start`` at most once per watch, surviving crashes.

    The intent is saved in the checkpoint store before ``call()`` runs and its answer right after,
    so a start run again (after a transient fault or a crash) does not send it a second time.

    :param key: names the request among the start's (``"bulk:0"``, ``"session:9560…"``); stable
        from one run to the next.
    :param call: sends the request and returns its answer, reduced to JSON-able values (ids).
        Decode inside it: an answer cut off after the provider took the request is an outcome
        not known, not a reason to send again.
    :param not_sent: tells from an exception of ``call`` that the provider surely did nothing (the
        default: a refusal (4xx), a busy answer outlasting its retries, a connection never made);
        only then is the step forgotten, so it may be sent again.
    :return: ``call()``'s answer, or the one saved by an earlier run.
    :raises StartOutcomeUnknown: the request was sent by an earlier run but its answer never
        arrived; catch it to look up what was started, or let it report the orphan.

    Outside a watch's ``start`` (a test calling the hook by hand) it just awaits ``call()``.
    """
    journal = _journal.get()
    if journal is None:
        return await call()
    return await journal.step(key, call, not_sent)


async def journaled_start(
    store: CheckpointStore, watch: str, saved: dict[str, Any] | None, begin: Callable[[], Awaitable[Any]]
) -> tuple[int, Any]:
    """Run the engine's ``start`` call with the journal of an unfinished earlier start, if any.

    :param saved: the watch's streams record (``None``, or ``{"run", "streams": None, "start"}``
        left by a start that did not finish).
    :return: the run number and what ``begin()`` returned.
    """
    run = int(saved["run"]) if saved is not None else 1
    journal = StartJournal(store, watch, run, saved.get("start") if saved is not None else None)
    token = _journal.set(journal)
    try:
        return run, await begin()
    finally:
        _journal.reset(token)

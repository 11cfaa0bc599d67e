"""Delivery: the one loop that hands a stream's pages of events over, one event at a time, and settles each page.

:func:`stream_events` is that loop. It takes the pages of :meth:`StreamRun.pages` and
tells the stream how many of each page got through: an event counts as delivered when
the consumer comes back for the next one (the handler returned, or the ``async for``
body finished). A consumer leaving mid-page (break, error, cancellation, a stop
request) is told to the stream too, which then saves the position after the last
delivered event and ends. :func:`deliver` runs a handler over it; :func:`merged_events`
interleaves several streams for one ``async for``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import anyio

from tidings._errors import HandlerError, TidingsError
from tidings._models import Event
from tidings._stream import Delivered, StopSignal, StreamRun

__all__ = ["Handler", "deliver", "first_error", "merged_events", "stream_events"]

Handler = Callable[[Event], Any]


async def stream_events(run: StreamRun, stop: StopSignal) -> AsyncGenerator[Event, None]:
    """A stream's new events one by one; an event is delivered when the next is asked for."""
    async with contextlib.aclosing(run.pages()) as pages:
        try:
            page = await pages.__anext__()
        except StopAsyncIteration:
            return
        while True:
            delivered = 0
            try:
                for event in page:
                    yield event
                    delivered += 1
                    if stop.requested:
                        break
            except BaseException:  # the consumer left (break, error, cancellation): `delivered` got through
                with anyio.CancelScope(shield=True), contextlib.suppress(StopAsyncIteration):
                    await pages.athrow(Delivered(delivered))
                raise
            page = []  # the delivered page need not outlive its commit
            try:
                page = await pages.asend(delivered)
            except StopAsyncIteration:
                return


async def deliver(
    runs: Sequence[StreamRun], handler: Handler, stop: StopSignal, *, dead_letter_errors: bool, provider: str
) -> None:
    """Deliver every stream's events to ``handler`` (the streams at once, in one task group).

    A handler exception stops the stream with the position before the event saved and raises
    :class:`HandlerError`; with ``dead_letter_errors`` the event is set aside instead and
    counts as delivered.
    """

    async def one(run: StreamRun) -> None:
        async with contextlib.aclosing(stream_events(run, stop)) as events:
            async for event in events:
                try:
                    result = handler(event)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    if not dead_letter_errors:
                        raise HandlerError(
                            f"the handler raised {type(exc).__name__} on event {event.id!r}; "
                            "the position before it is saved: fix the handler and run again",
                            provider=provider,
                        ) from exc
                    run.dead_letter(f"handler raised {type(exc).__name__}: {exc}", event.raw)

    if len(runs) == 1:
        await one(runs[0])
        return
    try:
        async with anyio.create_task_group() as tg:
            for run in runs:
                tg.start_soon(one, run)
    except BaseExceptionGroup as group:
        raise first_error(group)  # noqa: B904 - keeps the error's own cause


async def merged_events(runs: Sequence[StreamRun], stop: StopSignal) -> AsyncGenerator[Event, None]:
    """Every stream's events in one iterator, each delivered when the next is asked for."""
    if len(runs) == 1:
        async with contextlib.aclosing(stream_events(runs[0], stop)) as events:
            async for event in events:
                yield event
        return
    send, receive = anyio.create_memory_object_stream[tuple[Event, anyio.Event]](0)

    async def pump(run: StreamRun) -> None:
        async with contextlib.aclosing(stream_events(run, stop)) as events:
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
        raise first_error(group)  # noqa: B904 - keeps the error's own cause


def first_error(group: BaseExceptionGroup) -> BaseException:
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

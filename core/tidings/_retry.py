"""One retry policy for every call that may meet a transient fault: fetches, ``start``, ``ctx.retry``."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
from tenacity import AsyncRetrying, RetryCallState, RetryError, retry_if_exception_type, stop_after_attempt

from tidings._errors import RetriesExhausted, TransientError
from tidings._plugins import await_me_maybe

__all__ = ["OnRetry", "RetryPolicy"]

OnRetry = Callable[[BaseException, int, float], Awaitable[None]]
"""Told of each retry before its wait: ``(error, number of the failed attempt, seconds to wait)``."""


@attrs.frozen
class RetryPolicy:
    """How transient faults are retried: jittered backoff, a ``Retry-After`` floor, a budget.

    :param max_retries: retries after the first attempt; then :class:`RetriesExhausted`.
    :param base_wait: the wait after the first failure, doubling after each next one...
    :param max_wait: ...up to this (full jitter: a uniform draw below the doubled wait).
    :param provider: named in the error raised when the budget is spent.
    """

    max_retries: int = 8
    base_wait: float = 0.5
    max_wait: float = 30.0
    provider: str | None = None

    def delay(self, attempt: int, error: BaseException | None) -> float:
        """The wait after failed attempt number ``attempt`` (at least the server's ``Retry-After``)."""
        retry_after = getattr(error, "retry_after", None) or 0.0
        backoff = min(self.max_wait, self.base_wait * 2 ** (attempt - 1))
        return max(float(retry_after), random.uniform(0, backoff))

    async def call(self, call: Callable[[], Any], on_retry: OnRetry) -> Any:
        """Call (and await) ``call`` until it stops raising TransientError.

        The first attempt runs before any retry machinery is set up (most calls need no retry).
        ``on_retry`` hears of each retry before its wait.
        """
        try:
            return await await_me_maybe(call())
        except TransientError as exc:
            first = exc
        if self.max_retries < 1:
            raise self._exhausted(first) from first

        failed: list[Any] = [first, 1]  # the latest failure and its attempt number, for on_retry

        def wait(state: RetryCallState) -> float:
            # tenacity numbers the attempts after the first from 1 again, hence the + 1
            failed[:] = [state.outcome.exception() if state.outcome else None, state.attempt_number + 1]
            return self.delay(failed[1], failed[0])

        async def sleep(seconds: float) -> None:
            await on_retry(failed[0], failed[1], seconds)
            await anyio.sleep(seconds)

        # the first attempt failed above: wait as after attempt 1, then at most max_retries attempts more
        await sleep(self.delay(1, first))
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

"""The contract suite every provider plugin adopts in one line.

::

    from tidings.testing.contract import ProviderContract
    from tidings_x.emulator import XEmulator

    class TestContract(ProviderContract):
        provider = "x"
        emulator_class = XEmulator

Each test runs on asyncio and trio (the ``anyio_backend`` fixture of the
``tidings`` pytest plugin). A broken rule fails with ``contract rule '<name>'
broken: ...``. The emulator's :meth:`~tidings.sandbox.Emulator.scenario`
prepares the work and says which event ids a full read must deliver.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

import anyio
import pytest

import tidings
from tidings.sandbox import Clock, Emulator, Scenario
from tidings.testing import watch_for

__all__ = ["ContractBroken", "KillableStore", "ProviderContract"]


class ContractBroken(AssertionError):
    """A provider broke a rule of the contract."""


def broken(rule: str, message: str) -> ContractBroken:
    return ContractBroken(f"contract rule {rule!r} broken: {message}")


class KillableStore(tidings.MemoryStore):
    """A store that stops writing at :meth:`kill`, like a process killed with SIGKILL."""

    def __init__(self) -> None:
        super().__init__()
        self.killed = False

    def kill(self) -> None:
        self.killed = True

    async def commit(
        self,
        watch: str,
        stream: str,
        state: dict[str, Any],
        dead_letters: Sequence[Any] = (),
        delivered_ids: Sequence[str] = (),
        keep: int = 10_000,
    ) -> None:
        if not self.killed:
            await super().commit(watch, stream, state, dead_letters, delivered_ids, keep)

    async def save_streams(self, watch: str, streams: Any) -> None:
        if not self.killed:
            await super().save_streams(watch, streams)

    def committed_ids(self) -> set[str]:
        ids: set[str] = set()
        for chunks in self._ids.values():
            for chunk in chunks:
                ids.update(chunk)
        return ids


class _Killed(Exception):
    pass


@pytest.mark.anyio
class ProviderContract:
    """Subclass with ``provider`` and ``emulator_class`` (or override :meth:`make_emulator`)."""

    provider: ClassVar[str] = ""
    emulator_class: ClassVar[type[Emulator] | None] = None
    scenario_size: ClassVar[int] = 20
    clock_speed: ClassVar[float] = 20.0
    timeout: ClassVar[float] = 60.0

    # -- hooks for the plugin's test class -------------------------------------

    def make_emulator(self) -> Emulator:
        if self.emulator_class is None:
            raise NotImplementedError("set emulator_class or override make_emulator()")
        return self.emulator_class(seed=7, clock=Clock(speed=self.clock_speed))

    def make_watch(self, emulator: Emulator, scenario: Scenario, **overrides: Any) -> tidings.Watch:
        return watch_for(emulator, scenario, provider=self.provider, **overrides)

    # -- helpers -------------------------------------------------------------

    async def _read(
        self, watch: tidings.Watch, rule: str = "ends", stop_after: int | None = None
    ) -> list[tidings.Event]:
        got: list[tidings.Event] = []

        def handler(event: tidings.Event) -> None:
            got.append(event)
            if stop_after is not None and len(got) >= stop_after:
                watch.stop()

        try:
            with anyio.fail_after(self.timeout):
                await watch.run(handler)
        except TimeoutError:
            what = "the tracker never ended" if watch.kind == "tracker" else "the feed never went idle"
            raise broken(
                rule, f"{what} within {self.timeout:.0f}s ({len(got)} events, {len(set(e.id for e in got))} ids)"
            ) from None
        return got

    def _expect_exactly_once(self, rule: str, ids: list[str], expected: frozenset[str]) -> None:
        twice = sorted(i for i, n in Counter(ids).items() if n > 1)
        if twice:
            raise broken(rule, f"events delivered more than once: {twice[:10]}")
        missing = sorted(expected - set(ids))
        if missing:
            raise broken(rule, f"{len(missing)} events never delivered: {missing[:10]}")
        extra = sorted(set(ids) - expected)
        if extra:
            raise broken(rule, f"events delivered that the emulator never served: {extra[:10]}")

    # -- the rules -------------------------------------------------------------

    async def test_contract_every_record_parses(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        watch = self.make_watch(emulator, scenario)
        events = await self._read(watch, "every-record-parses")
        letters = await watch.dead_letters()
        if letters:
            raise broken("every-record-parses", f"{len(letters)} records dead-lettered, first: {letters[0].reason}")
        for event in events:
            if not isinstance(event, tidings.Event) or event.provider != self.provider:
                raise broken("every-record-parses", f"not an Event of {self.provider!r}: {event!r}")
            if event.occurred_at.tzinfo is None or (event.occurred_at.utcoffset() is not None and \
                    event.occurred_at.utcoffset().total_seconds() != 0):  # type: ignore[union-attr]
                raise broken("every-record-parses", f"occurred_at is not UTC-aware: {event!r}")
            try:
                event.record  # noqa: B018 - builds the typed record
            except tidings.ParseError as exc:
                raise broken("every-record-parses", f"typed record of {event.id!r} fails: {exc}") from exc

    async def test_contract_full_read_exactly_once(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        watch = self.make_watch(emulator, scenario)
        events = await self._read(watch, "exactly-once")
        self._expect_exactly_once("exactly-once", [e.id for e in events], emulator.expected_ids(scenario))

    async def test_contract_restart_resumes(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        store = tidings.MemoryStore()
        first = await self._read(self.make_watch(emulator, scenario, store=store), "restart-resumes", stop_after=3)
        second = await self._read(self.make_watch(emulator, scenario, store=store), "restart-resumes")
        expected = emulator.expected_ids(scenario)
        self._expect_exactly_once("restart-resumes", [e.id for e in first + second], expected)

    async def test_contract_kill_mid_page_loses_nothing(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        store = KillableStore()
        first: list[tidings.Event] = []

        def dying(event: tidings.Event) -> None:
            first.append(event)
            if len(first) == 4:
                store.kill()  # nothing after this point reaches the disk...
                raise _Killed  # ...and the process dies mid-page

        watch = self.make_watch(emulator, scenario, store=store)
        with contextlib.suppress(tidings.HandlerError), anyio.fail_after(self.timeout):
            await watch.run(dying)
        committed = store.committed_ids()
        store.killed = False
        second = await self._read(self.make_watch(emulator, scenario, store=store), "kill-loses-nothing")
        expected = emulator.expected_ids(scenario)
        ids = [e.id for e in first + second]
        missing = sorted(expected - set(ids))
        if missing:
            raise broken("kill-loses-nothing", f"{len(missing)} events lost after a kill: {missing[:10]}")
        repeated = sorted(committed & {e.id for e in second})
        if repeated:
            raise broken("kill-repeats-nothing-committed", f"committed events delivered again: {repeated[:10]}")

    async def test_contract_faults_survived(self) -> None:
        emulator = self.make_emulator()
        emulator.faults.retry_after = 0.05
        for kind in ("503", "429", "truncated", "500", "reset", "non-json", "502"):
            emulator.faults.fail_next(kind)
        if type(emulator).error_in_200 is not Emulator.error_in_200:
            emulator.faults.fail_next("error-in-200", 2)
        scenario = emulator.scenario(self.scenario_size)
        # every queued fault may hit the same request in a row: allow that many retries and a few more
        watch = self.make_watch(emulator, scenario, max_retries=len(emulator.faults.queued) + 3)
        events = await self._read(watch, "faults-survived")
        if emulator.faults.queued:
            raise broken("faults-survived", f"the faults were not all served: {list(emulator.faults.queued)}")
        self._expect_exactly_once("faults-survived", [e.id for e in events], emulator.expected_ids(scenario))

    async def test_contract_tracker_ends_or_feed_idles(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        info = tidings.providers()[self.provider].info
        watch = self.make_watch(emulator, scenario, until_idle=False) if info.kind == "tracker" else \
            self.make_watch(emulator, scenario)
        events = await self._read(watch, "terminal-ends-tracker")
        if info.kind == "tracker":
            if watch.stats.streams_ended != watch.stats.streams:
                raise broken("terminal-ends-tracker", f"ended with open streams: {watch.stats}")
            if not any(e.terminal for e in events):
                raise broken("terminal-ends-tracker", "no event was marked terminal")

    async def test_contract_secrets_never_shown(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        secret = "s3cr3t-" + "x" * 12
        watch = self.make_watch(emulator, scenario, token=secret, max_retries=0)
        with pytest.raises(tidings.TidingsError) as info:
            await self._read(watch, "secrets-never-shown")
        shown = [str(info.value), repr(info.value), repr(watch), repr(watch.http), caplog.text]
        if watch.http is not None:
            shown.append(repr(watch.http.auth))
        for text in shown:
            if secret in text:
                raise broken("secrets-never-shown", f"the token appears in: {text[:200]!r}")
        if not isinstance(info.value, tidings.AuthenticationError):
            raise broken("secrets-never-shown", f"a wrong token must raise AuthenticationError, got {info.value!r}")

    async def test_contract_over_loopback(self) -> None:
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        with emulator.serve() as base_url:
            watch = self.make_watch(emulator, scenario, base_url=base_url, transport=None)
            events = await self._read(watch, "loopback")
        self._expect_exactly_once("loopback", [e.id for e in events], emulator.expected_ids(scenario))

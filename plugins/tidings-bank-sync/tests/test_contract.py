"""The core contract suite against the emulator: a queue that keeps its events, and one that does not."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest
import tidings
from tidings.sandbox import Clock
from tidings.testing.contract import KillableStore, ProviderContract
from tidings_bank_sync.emulator import BankSyncEmulator


class TestContract(ProviderContract):
    """Default emulator: reading the queue leaves the events on it."""

    provider = "bank-sync"
    emulator_class = BankSyncEmulator


class TestContractDestructiveQueue(ProviderContract):
    """Reading removes events, three at most per read, newest first, channel events linking their connection."""

    provider = "bank-sync"
    emulator_class = BankSyncEmulator
    options: ClassVar[dict[str, Any]] = {"destructive": True, "max_batch": 3, "newest_first": True,
                                         "channel_shape": "link"}

    def make_emulator(self) -> BankSyncEmulator:
        return BankSyncEmulator(seed=7, clock=Clock(speed=self.clock_speed), **self.options)

    async def test_contract_kill_mid_page_loses_nothing(self) -> None:
        """On a destructive queue a kill loses what was read but not committed, and only that."""
        emulator = self.make_emulator()
        scenario = emulator.scenario(self.scenario_size)
        store = KillableStore()
        first: list[tidings.Event] = []

        def dying(event: tidings.Event) -> None:
            first.append(event)
            if len(first) == 2:
                store.kill()
                raise RuntimeError("killed")

        with pytest.raises(tidings.HandlerError), anyio.fail_after(self.timeout):
            await self.make_watch(emulator, scenario, store=store).run(dying)
        committed = store.committed_ids()
        store.killed = False
        second = await self._read(self.make_watch(emulator, scenario, store=store))
        expected = emulator.expected_ids(scenario)
        seen = {e.id for e in first + second}
        lost = expected - seen
        assert len(lost) <= emulator.max_batch  # at most the answer in hand when the process died
        assert not committed & {e.id for e in second}
        assert not [i for i in {e.id for e in second} if i in {e.id for e in first} and i in committed]

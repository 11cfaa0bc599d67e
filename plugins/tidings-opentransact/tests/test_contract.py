"""The core's contract suite, against the emulator listing newest first and oldest first.

The order of the list is not documented, so the plugin must keep the contract in both.
"""

from __future__ import annotations

from tidings.sandbox import Clock, Emulator
from tidings.testing.contract import ProviderContract
from tidings_opentransact.emulator import OpenTransactEmulator


class TestContractNewestFirst(ProviderContract):
    provider = "opentransact"
    emulator_class = OpenTransactEmulator

    def make_emulator(self) -> Emulator:
        return OpenTransactEmulator(newest_first=True, seed=7, clock=Clock(speed=self.clock_speed))


class TestContractOldestFirst(ProviderContract):
    provider = "opentransact"
    emulator_class = OpenTransactEmulator

    def make_emulator(self) -> Emulator:
        return OpenTransactEmulator(
            newest_first=False, inclusive_bounds=False, seed=7, clock=Clock(speed=self.clock_speed)
        )

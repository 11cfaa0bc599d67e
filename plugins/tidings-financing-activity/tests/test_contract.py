"""The core contract suite against the emulator (asyncio and trio, in-process and over loopback)."""

from __future__ import annotations

from tidings.testing.contract import ProviderContract
from tidings_financing_activity import FinancingActivityEmulator


class TestContract(ProviderContract):
    provider = "financing-activity"
    emulator_class = FinancingActivityEmulator

"""The core contract suite against the aml-session emulator (asyncio and trio, in-process and loopback)."""

from __future__ import annotations

from tidings.testing.contract import ProviderContract
from tidings_aml_session.emulator import AmlSessionEmulator


class TestContract(ProviderContract):
    provider = "aml-session"
    emulator_class = AmlSessionEmulator

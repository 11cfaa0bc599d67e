"""The core contract suite against the request-status emulator (asyncio and trio, in-process and loopback)."""

from __future__ import annotations

from tidings.testing.contract import ProviderContract
from tidings_request_status import RequestStatusEmulator


class TestContract(ProviderContract):
    provider = "request-status"
    emulator_class = RequestStatusEmulator

"""The contract suite against the tiny provider: it passes, and a broken provider fails it by name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tidings
from tidings.testing.contract import ProviderContract

from tiny import TinyEmulator, TinyFeed


@pytest.fixture(autouse=True)
def _tiny() -> Iterator[None]:
    plugin = tidings.register(TinyFeed())
    yield
    tidings.unregister(plugin)


class TestTinyContract(ProviderContract):
    provider = "tiny-feed"
    emulator_class = TinyEmulator

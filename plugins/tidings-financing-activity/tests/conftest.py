"""Helpers for the plugin's tests: a watch on an in-process emulator, and a stopped clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import tidings
from tidings.sandbox import Clock
from tidings_financing_activity import FinancingActivityEmulator

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def emulator() -> FinancingActivityEmulator:
    """An emulator whose clock stands still at T0 (tests move it with ``clock.advance``)."""
    return FinancingActivityEmulator(seed=3, clock=Clock(T0, speed=0))


@pytest.fixture
def make_watch() -> Callable[..., tidings.Watch]:
    def make(emulator: FinancingActivityEmulator, **options: Any) -> tidings.Watch:
        settings: dict[str, Any] = {
            "base_url": emulator.base_url,
            "token": emulator.token,
            "transport": emulator.transport(),
            "store": tidings.MemoryStore(),
            "interval": 0.01,
            "max_interval": 0.05,
            "until_idle": True,
            "retry_base_wait": 0.01,
            "retry_max_wait": 0.05,
        }
        settings.update(options)
        return tidings.Watch("financing-activity", **settings)

    return make


async def read(watch: tidings.Watch) -> list[tidings.Event]:
    """Every event a watch delivers until it ends (a feed: until idle)."""
    got: list[tidings.Event] = []
    with anyio.fail_after(20):
        await watch.run(got.append)
    return got


@pytest.fixture
def read_all() -> Callable[..., Any]:
    return read

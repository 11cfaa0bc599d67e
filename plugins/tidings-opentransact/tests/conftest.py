"""Fixtures of the plugin's tests: a watch over the in-process emulator, its saved cursor, both orders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tidings
from tidings_opentransact import ActivityCursor
from tidings_opentransact.emulator import OpenTransactEmulator

WatchFactory = Callable[..., tidings.Watch]


def _make_watch(emulator: OpenTransactEmulator, **overrides: Any) -> tidings.Watch:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "token": emulator.token,
        "transport": emulator.transport(),
        "page_size": 3,
        "store": tidings.MemoryStore(),
        "interval": 0.01,
        "max_interval": 0.05,
        "retry_base_wait": 0.01,
        "retry_max_wait": 0.05,
    }
    options.update(overrides)
    return tidings.Watch("opentransact", **options)


async def _saved_cursor(store: Any, name: str = "opentransact") -> ActivityCursor:
    streams = await store.load_streams(name)
    assert streams is not None
    state = await store.load(name, f"{streams['run']}/")
    assert state is not None
    return tidings.converter.structure(state["cursor"], ActivityCursor)


@pytest.fixture
def make_watch() -> WatchFactory:
    """``make_watch(emulator, **Watch options)``: a watch over the emulator, in-process, pages of 3."""
    return _make_watch


@pytest.fixture
def saved_cursor() -> Callable[..., Awaitable[ActivityCursor]]:
    """``await saved_cursor(store)``: the cursor the watch saved last."""
    return _saved_cursor


@pytest.fixture(params=[True, False], ids=["newest-first", "oldest-first"])
def newest_first(request: pytest.FixtureRequest) -> bool:
    """Both list orders: the documents do not say which the API uses."""
    return bool(request.param)

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tidings

from tiny import TinyFeed, TinyServer, TinyTracker


@pytest.fixture
def tiny_feed() -> Iterator[TinyFeed]:
    plugin = tidings.register(TinyFeed())
    yield plugin
    tidings.unregister(plugin)


@pytest.fixture
def tiny_tracker() -> Iterator[TinyTracker]:
    plugin = tidings.register(TinyTracker())
    yield plugin
    tidings.unregister(plugin)


@pytest.fixture
def server() -> TinyServer:
    srv = TinyServer()
    for i in range(12):
        srv.add(f"e{i:02d}", i // 4)  # ties: four events share each time, pages of 3
    return srv

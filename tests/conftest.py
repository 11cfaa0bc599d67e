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


def make_watch(server: TinyServer, provider: str = "tiny-feed", **kwargs: object) -> tidings.Watch:
    options: dict[str, object] = {
        "transport": server.transport(),
        "until_idle": provider == "tiny-feed",
        "interval": 0.0,
        "max_interval": 0.05,
        "retry_base_wait": 0.001,
        "retry_max_wait": 0.01,
    }
    options.update(kwargs)
    return tidings.Watch(provider, **options)  # type: ignore[arg-type]

"""The ``pytest11`` plugin tidings installs: fixtures for plugin authors.

Fixtures: ``anyio_backend`` (asyncio and trio), ``tidings_store`` (a fresh
in-memory checkpoint store) and ``tidings_plugin`` (register a plugin for one
test, unregistered afterwards).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tidings


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every async test runs on asyncio and on trio."""
    return str(request.param)


@pytest.fixture
def tidings_store() -> tidings.MemoryStore:
    return tidings.MemoryStore()


@pytest.fixture
def tidings_plugin() -> Iterator[Callable[..., Any]]:
    """Register plugins for one test: ``tidings_plugin(MyProvider)``; all unregistered after it."""
    registered: list[Any] = []

    def register(plugin: Any, name: str | None = None) -> Any:
        obj = tidings.register(plugin, name=name)
        registered.append(obj)
        return obj

    yield register
    for obj in registered:
        tidings.unregister(obj)

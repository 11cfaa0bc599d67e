"""The ``pytest11`` plugin tidings installs: fixtures for plugin authors.

Fixtures: ``anyio_backend`` (asyncio and trio), ``tidings_store`` (a fresh
in-memory checkpoint store), ``tidings_plugin`` (register a plugin for one
test, unregistered afterwards), ``tidings_emulator`` (a named provider's
emulator with its scenario prepared) and ``tidings_watch`` (a watch following
an emulator in-process, tuned for tests).
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


@pytest.fixture
def tidings_emulator() -> Callable[..., tuple[Any, Any]]:
    """``emulator, scenario = tidings_emulator("bank-sync", size=20, speed=20.0)``: in-process, ready.

    ``speed`` runs the emulator's clock that many times faster than real time.
    """
    from tidings.sandbox import Clock

    def make(provider: str, size: int = 20, speed: float = 20.0) -> tuple[Any, Any]:
        info = tidings.providers()[provider].info
        if info.emulator is None:
            raise tidings.ConfigurationError("this plugin ships no emulator", provider=provider)
        emulator = info.emulator()
        emulator.clock = Clock(speed=speed)
        return emulator, emulator.scenario(size)

    return make


@pytest.fixture
def tidings_watch(tidings_store: tidings.MemoryStore) -> Callable[..., tidings.Watch]:
    """``tidings_watch(emulator, scenario, **watch_options)``: a watch on it, using ``tidings_store``."""
    from tidings.testing import watch_for

    def make(emulator: Any, scenario: Any = None, **overrides: Any) -> tidings.Watch:
        overrides.setdefault("store", tidings_store)
        return watch_for(emulator, scenario, **overrides)

    return make

"""Helpers for plugin authors: fixtures (the ``pytest11`` plugin), :func:`watch_for` and the contract suite."""

from __future__ import annotations

from typing import Any

import tidings
from tidings.sandbox import Emulator, Scenario

__all__ = ["watch_for"]


def watch_for(emulator: Emulator, scenario: Scenario | None = None, **overrides: Any) -> tidings.Watch:
    """A watch following ``emulator`` in-process, tuned for tests (fast polls, short retry waits).

    :param scenario: the prepared work to follow (its params, page size and ``after``); default: none.
    :param overrides: any :class:`tidings.Watch` option (``store=``, ``until_idle=``, ``base_url=``...).
    """
    provider = overrides.pop("provider", None) or emulator.provider
    info = tidings.providers()[provider].info
    scenario = scenario or Scenario()
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "token": emulator.token,
        "transport": emulator.transport(),
        "params": scenario.params,
        "page_size": scenario.page_size,
        "after": scenario.after,
        "store": tidings.MemoryStore(),
        "interval": 0.01,
        "max_interval": 0.05,
        "until_idle": info.kind == "feed",
        "retry_base_wait": 0.01,
        "retry_max_wait": 0.05,
    }
    options.update(overrides)
    return tidings.Watch(provider, **options)

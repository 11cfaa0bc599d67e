"""Helpers for plugin authors: fixtures (the ``pytest11`` plugin), :func:`watch_for` and the contract suite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tidings
from tidings.sandbox import Emulator, Scenario

__all__ = ["ContractReport", "check_provider", "context_for", "watch_for"]


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


def context_for(
    provider: str,
    params: Mapping[str, Any] | None = None,
    *,
    http: tidings.HTTP,
    stream: tidings.Stream | None = None,
    **fields: Any,
) -> tidings.WatchContext:
    """A :class:`tidings.WatchContext` for calling a provider's hooks directly, as a watch would.

    ``params`` are structured into ``ctx.options`` exactly as :class:`tidings.Watch` does (a bad
    value raises the same ConfigurationError); ``fields`` sets any other context field
    (``page_size=``, ``after=``...).
    """
    from tidings._options import structure_options

    info = tidings.providers()[provider].info
    given = dict(params or {})
    return tidings.WatchContext(
        provider=provider, watch=fields.pop("watch", "test"), stream=stream or tidings.Stream(), params=given,
        base_url=fields.pop("base_url", str(http.base_url).rstrip("/")), http=http,
        options=structure_options(info, given), **fields,
    )


def __getattr__(name: str) -> Any:
    """``check_provider`` and ``ContractReport`` load the contract rules (and pytest) only when asked for."""
    if name in ("check_provider", "ContractReport"):
        from tidings.testing import _check

        return getattr(_check, name)
    raise AttributeError(f"module 'tidings.testing' has no attribute {name!r}")

"""Running a notebook cell that registers a provider twice replaces it, with a one-line notice."""

from __future__ import annotations

import logging

import pytest
import tidings
from tidings._plugins import get_plugin_manager

from tiny import TinyFeed


def provider_info_impls(name: str) -> int:
    impls = get_plugin_manager().hook.provider_info.get_hookimpls()
    return sum(1 for impl in impls if impl.function().name == name)


def test_registering_the_same_provider_again_replaces_it(caplog: pytest.LogCaptureFixture) -> None:
    first = tidings.register(TinyFeed)
    caplog.set_level(logging.WARNING, logger="tidings")
    second = tidings.register(TinyFeed)  # the cell, run again
    try:
        assert provider_info_impls("tiny-feed") == 1
        assert tidings.providers()["tiny-feed"].plugin is second is not first
        notices = [r.getMessage() for r in caplog.records if r.name == "tidings"]
        assert notices == ["tidings: provider 'tiny-feed' registered again; the new one replaces the old"]
    finally:
        tidings.unregister(second)
    assert "tiny-feed" not in tidings.providers()


def test_the_same_object_or_another_provider_is_no_replacement(caplog: pytest.LogCaptureFixture) -> None:
    class Other(TinyFeed):
        name = "tiny-other"

    feed = tidings.register(TinyFeed())
    other = tidings.register(Other())
    try:
        assert {"tiny-feed", "tiny-other"} <= set(tidings.providers())
        assert not [r for r in caplog.records if r.name == "tidings"]
    finally:
        tidings.unregister(feed)
        tidings.unregister(other)

"""The plugin-author test kit: fixtures for a named provider's emulator and a watch against it."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio


async def test_emulator_and_watch_fixtures_follow_a_tracker_to_its_end(
    tidings_emulator: Any, tidings_watch: Any, tidings_store: Any
) -> None:
    emulator, scenario = tidings_emulator("bank-sync", speed=20)
    watch = tidings_watch(emulator, scenario)
    events = await watch.collect()
    assert events and events[-1].terminal
    assert {e.id for e in events} == set(emulator.expected_ids(scenario))
    assert watch.store is tidings_store and tidings_store.commits > 0

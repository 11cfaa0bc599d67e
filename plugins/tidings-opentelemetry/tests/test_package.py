"""The package: found through its entry point, cross-cutting, off the per-event path, unknown to the core."""

from __future__ import annotations

from pathlib import Path

import tidings
import tidings_opentelemetry
from tidings.testing import watch_for
from tidings_financing_activity import FinancingActivityEmulator

ROOT = Path(__file__).parents[3]


def test_all_is_complete() -> None:
    public = {n for n in dir(tidings_opentelemetry) if not n.startswith("_")}
    modules = {"plugin", "prometheus", "reading"}
    assert public - modules == set(tidings_opentelemetry.__all__) - {"__version__"}
    assert tidings_opentelemetry.__version__ == "0.1.0"


def test_it_is_loaded_through_its_entry_point_and_provides_no_provider() -> None:
    pm = tidings._plugins.get_plugin_manager()
    assert pm.get_plugin("opentelemetry") is tidings_opentelemetry.telemetry
    assert tidings._plugins._distributions["opentelemetry"] == ("tidings-opentelemetry", "0.1.0")
    assert all(e.plugin is not tidings_opentelemetry.telemetry for e in tidings.providers().values())


def test_the_per_event_hooks_stay_the_providers_own() -> None:
    watch = watch_for(FinancingActivityEmulator())
    assert watch._hooks.plain("parse_event")  # a feed's page is still parsed in one C-level loop
    pm = tidings._plugins.get_plugin_manager()
    for hook in ("parse_event", "checkpoint", "is_terminal"):
        assert all(i.plugin is not tidings_opentelemetry.telemetry for i in getattr(pm.hook, hook).get_hookimpls())
    assert watch._hooks.observes("page_read") and watch._hooks.observes("subjects_open")


def test_nothing_in_the_core_imports_it() -> None:
    for path in (ROOT / "core" / "tidings").rglob("*.py"):
        assert "tidings_opentelemetry" not in path.read_text(), path

"""The package: found through its entry point, cross-cutting, off the per-event path, unknown to the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
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


CHECK_CLIENT = """
import tidings
from tidings_financing_activity import FinancingActivityEmulator
from tidings.testing import watch_for

class Seen:
    flags = []

    @tidings.hookimpl
    def page_read(self, ctx):
        self.flags.append(getattr(ctx.http.client, "_is_instrumented_by_opentelemetry", False))

seen = tidings.register(Seen())
{setup}
emulator = FinancingActivityEmulator()
tidings.collect(watch_for(emulator, emulator.scenario(4)))
print(set(seen.flags))
"""


@pytest.mark.parametrize(
    ("setup", "instrumented"),
    [("", False), ("import tidings_opentelemetry; tidings_opentelemetry.use_prometheus_reader()", True)],
)
def test_the_http_client_is_instrumented_once_an_sdk_is_set(setup: str, instrumented: bool) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK_CLIENT.format(setup=setup)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str({instrumented})

"""What cross-cutting plugins (metrics, tracing) rely on: wrappers that add nothing, open subjects, serving metrics."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tidings
from click.testing import CliRunner
from tidings import hookimpl
from tidings.cli import main
from tidings.webhooks import receive

from tiny import TinyEmulator, TinyServer, make_watch

pytestmark = pytest.mark.anyio

TIDINGS = str(Path(sys.executable).with_name("tidings"))


class WrapsEverything:
    """Wraps provider hooks a feed does not implement; must not make the feed look as if it did."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl(wrapper=True)
    def start(self) -> Any:
        self.calls.append("start")
        return (yield)

    @hookimpl(wrapper=True)
    def is_terminal(self) -> Any:
        self.calls.append("is_terminal")
        return (yield)

    @hookimpl(wrapper=True)
    def parse_webhook(self) -> Any:
        self.calls.append("parse_webhook")
        return (yield)

    @hookimpl(wrapper=True)
    def fetch_page(self) -> Any:
        self.calls.append("fetch_page")
        return (yield)


async def test_a_wrapper_alone_does_not_implement_a_hook(
    server: TinyServer, tiny_feed: Any, tidings_plugin: Any
) -> None:
    wrapper = tidings_plugin(WrapsEverything())
    watch = make_watch(server)
    assert watch._hooks.implements("fetch_page")
    assert not watch._hooks.implements("start")
    assert not watch._hooks.implements("is_terminal")  # the feed keeps its whole-page fast path
    assert not watch._hooks.implements("parse_webhook")
    with pytest.raises(tidings.ConfigurationError, match="takes no webhooks"), receive(watch):
        pass
    assert len(await watch.collect()) == 12
    assert set(wrapper.calls) == {"fetch_page"}


class OpenSubjects:
    def __init__(self) -> None:
        self.told: list[tuple[str, int]] = []

    @hookimpl
    def subjects_open(self, ctx: tidings.WatchContext, subjects: int) -> None:
        self.told.append((ctx.stream.key, subjects))


async def test_subjects_open_is_told_at_the_start_and_after_each_commit_that_ended_some(
    tiny_tracker: Any, tidings_plugin: Any
) -> None:
    seen = tidings_plugin(OpenSubjects())
    server = TinyServer()
    server.add("a-done", 0, "a", kind="done")
    server.add("b-note", 1, "b")
    server.add("b-done", 2, "b", kind="done")
    server.add("c-done", 3, "c", kind="done")
    store = tidings.MemoryStore()
    options: dict[str, Any] = {"provider": "tiny-tracker", "params": {"subject": ["a", "b", "c"]}, "store": store,
                               "page_size": 1}
    first = await make_watch(server, **options).collect(limit=1)
    assert [e.id for e in first] == ["a-done"]
    assert seen.told == [("all", 3), ("all", 2)]
    seen.told.clear()
    rest = await make_watch(server, **options).collect()  # resumed: a ended in the first run
    assert [e.id for e in rest] == ["b-note", "b-done", "c-done"]
    assert seen.told == [("all", 2), ("all", 1), ("all", 0)]  # the page with b-note ended nothing


async def test_subjects_open_is_never_told_for_a_feed(server: TinyServer, tiny_feed: Any, tidings_plugin: Any) -> None:
    seen = tidings_plugin(OpenSubjects())
    await make_watch(server).collect()
    assert seen.told == []


class Metrics:
    def __init__(self) -> None:
        self.served: list[tuple[str, int]] = []
        self.stopped = 0

    @hookimpl
    def serve_metrics(self, host: str, port: int) -> Any:
        @contextlib.contextmanager
        def serving() -> Iterator[str]:
            self.served.append((host, port))
            try:
                yield f"http://{host}:{port}/metrics"
            finally:
                self.stopped += 1

        return serving()


@pytest.fixture
def emulator(tiny_feed: Any) -> Iterator[Any]:
    em = TinyEmulator()
    em.scenario(5)
    with em.serve() as url:
        em.url = url
        yield em


@pytest.mark.parametrize(("given", "address"), [("9464", ("127.0.0.1", 9464)), ("0.0.0.0:0", ("0.0.0.0", 0))])
def test_follow_serves_metrics_through_the_plugin_while_it_runs(
    emulator: Any, tidings_plugin: Any, tmp_path: Path, given: str, address: tuple[str, int]
) -> None:
    metrics = tidings_plugin(Metrics())
    result = CliRunner().invoke(main, ["follow", "tiny-feed", "--base-url", emulator.url, "--token", emulator.token,
                                       "--until-idle", "--interval", "0", "--checkpoint", str(tmp_path / "c.db"),
                                       "--metrics-port", given])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 5
    assert metrics.served == [address] and metrics.stopped == 1


def test_a_bad_metrics_port_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["follow", "financing-activity", "--sandbox", "--metrics-port", "nine",
                                       "--checkpoint", str(tmp_path / "c.db")])
    assert result.exit_code == 2
    assert "--metrics-port takes PORT or HOST:PORT, got 'nine'" in result.output


def test_metrics_without_a_plugin_that_serves_them_name_the_one_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "TIDINGS_BLOCK_PLUGINS": "opentelemetry"}
    done = subprocess.run(
        [TIDINGS, "follow", "financing-activity", "--sandbox", "--until-idle", "--metrics-port", "0",
         "--checkpoint", str(tmp_path / "c.db")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "tidings-opentelemetry[prometheus]" in done.stderr
    assert done.stdout == ""

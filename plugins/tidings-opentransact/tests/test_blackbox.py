"""Black-box tests: the real ``tidings follow opentransact`` command against an independent server.

The server (``opentransact_blackbox_server.py``) is written from PROVIDERS.md and the seed only and
runs on real loopback; the command runs as a subprocess in a temporary directory.
Each server variant lives under a path prefix of its own (``/<n>/v1``), so the
variants of one test run side by side (a command takes about a second to start).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tidings._serve import serve_asgi

sys.path.insert(0, str(Path(__file__).parent))
from opentransact_blackbox_server import BASE, Server, stamp

TIDINGS = str(Path(sys.executable).with_name("tidings"))
TOKEN = "ot-secret-key-1234"


class Router:
    """One loopback server for the module; ``/<n>/v1/...`` reaches server ``n``."""

    def __init__(self) -> None:
        self.servers: dict[str, Server] = {}
        self.numbers = itertools.count(1)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = scope["path"].split("/")[1] if scope["type"] == "http" else ""
        await self.servers[key].app(scope, receive, send)


ROUTER = Router()


@pytest.fixture(scope="module")
def root_url() -> Iterator[str]:
    with serve_asgi(ROUTER, name="opentransact-blackbox") as url:
        yield url


class Variant:
    """A server with its switches, its base URL and a working directory for the command."""

    def __init__(self, root_url: str, cwd: Path, **switches: Any) -> None:
        key = str(next(ROUTER.numbers))
        self.server = ROUTER.servers[key] = Server(TOKEN)
        for name, value in switches.items():
            assert hasattr(self.server, name), name
            setattr(self.server, name, value)
        self.base_url = f"{root_url}/{key}/v1"
        self.cwd = cwd / key
        self.cwd.mkdir()

    def follow(self, *args: str, token: str | None = TOKEN, name: str = "w",
               env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
        return follow(self.base_url, self.cwd, *args, token=token, name=name, env=env)


@pytest.fixture
def variant(root_url: str, tmp_path: Path) -> Callable[..., Variant]:
    return lambda **switches: Variant(root_url, tmp_path, **switches)


def follow(base_url: str, cwd: Path, *args: str, token: str | None = TOKEN, name: str = "w",
           env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
    cmd = [TIDINGS, "follow", "opentransact", "--base-url", base_url, "--checkpoint", "cp.sqlite3",
           "--name", name, "--until-idle", "--interval", "0.05", *args]
    if token is not None:
        cmd += ["--token", token]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def side_by_side(*scenarios: Callable[[], None]) -> None:
    """Run independent scenarios at once; re-raise the first failure."""
    with ThreadPoolExecutor(len(scenarios)) as pool:
        for future in [pool.submit(s) for s in scenarios]:
            future.result()


def assert_exactly(events: list[dict[str, Any]], expected: list[dict[str, Any]], what: str = "") -> None:
    ids = [e["id"] for e in events]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"{what}: delivered twice: {twice}"
    want = {r["id"] for r in expected}
    assert set(ids) == want, f"{what}: missing {len(want - set(ids))}, extra {len(set(ids) - want)}"
    by_id = {r["id"]: r for r in expected}
    for e in events:
        raw = by_id[e["id"]]
        assert e["raw"] == raw
        assert e["provider"] == "opentransact"
        assert e["type"] == f"activity.{raw['attributes']['action']}"
        subject = raw["relationships"]["subject"]["data"]
        assert e["subject"] == f"{subject['type']}/{subject['id']}"
        assert e["status"] is None
        assert e["terminal"] is False
        assert e["occurred_at"].replace("+00:00", "Z") == raw["attributes"]["created-at"]


def clean(stderr: str, *secrets: str) -> None:
    assert "Traceback" not in stderr
    for secret in (TOKEN, *secrets):
        assert secret not in stderr


def one_error_line(rc: int, events: list[dict[str, Any]], err: str) -> str:
    assert rc != 0 and events == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tidings: error:"), err
    clean(err)
    return lines[0]


# -- orders, bounds, ties, capped pages, pages without meta ----------------------------------------


def test_every_activity_once_whatever_the_order_bounds_ties_and_page_cap(variant: Any) -> None:
    cases = [
        dict(newest_first=True, inclusive=True, tie_by_id=False, max_size=7),
        dict(newest_first=False, inclusive=False, tie_by_id=True, max_size=7),
        dict(newest_first=True, inclusive=False, tie_by_id=True, max_size=30),
        dict(newest_first=False, inclusive=True, tie_by_id=False, max_size=100),
        dict(newest_first=True, with_meta=False, max_size=10),  # links only
        dict(newest_first=False, with_meta=False, with_links=False, max_size=10),  # neither
    ]
    variants = [variant(**case) for case in cases]

    def scenario(v: Variant, case: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            v.server.fill(47, per_second=5)  # ties across page boundaries
            rc, events, err = v.follow()
            assert rc == 0, err
            assert_exactly(events, v.server.all_raw, str(case))
            first = v.server.requests[0]
            assert first["page[size]"] == "30" and first["page[number]"] == "1"
            assert first["authorization"] == f"Bearer {TOKEN}"
            assert "application/vnd.api+json" in first["accept"]
            clean(err)

        return run

    side_by_side(*(scenario(v, c) for v, c in zip(variants, cases, strict=True)))


# -- pages that shift, late activities ---------------------------------------------------------------


def test_activities_created_while_paging_neither_lost_nor_repeated(variant: Any) -> None:
    def scenario(newest_first: bool, late_by: int) -> Callable[[], None]:
        v = variant(newest_first=newest_first, tie_by_id=True, max_size=10)

        def run() -> None:
            server = v.server
            server.fill(45, per_second=4)
            left = [5]

            def arrive(number: int) -> None:
                if number >= 2 and left[0]:
                    left[0] -= 1
                    server.add(server.newest() - timedelta(seconds=late_by))

            server.on_page = arrive
            rc, events, err = v.follow()
            assert rc == 0, err
            assert left[0] == 0
            assert_exactly(events, server.all_raw, f"newest_first={newest_first} late_by={late_by}")

        return run

    side_by_side(*(scenario(n, late) for n in (True, False) for late in (0, 2)))


def test_activities_created_during_the_last_poll_are_not_left_behind(variant: Any) -> None:
    """Newest first, an activity created while the client reads page 2 lands on page 1, already
    read; a poll that saw ``meta.count`` grow must look again before it calls itself idle."""
    v = variant(newest_first=True, max_size=10)
    v.server.fill(25, per_second=5)
    rc, events, err = v.follow()
    assert rc == 0, err
    assert len(events) == 25
    added: list[dict[str, Any]] = []

    def arrive(number: int) -> None:
        if number == 2 and not added:
            added.append(v.server.add(v.server.newest() + timedelta(seconds=1)))

    v.server.on_page = arrive
    rc, events, err = v.follow()
    assert rc == 0, err
    assert_exactly(events, added)


# -- resume, interrupt -----------------------------------------------------------------------------


def test_a_second_run_delivers_only_what_is_new(variant: Any) -> None:
    def scenario(newest_first: bool, inclusive: bool) -> Callable[[], None]:
        v = variant(newest_first=newest_first, inclusive=inclusive)

        def run() -> None:
            server = v.server
            server.fill(40, per_second=6)
            rc, first, err = v.follow()
            assert rc == 0, err
            assert_exactly(first, server.all_raw)
            newest = server.newest()
            new = [server.add(newest) for _ in range(3)]  # the same second as the newest delivered
            new += [server.add(newest + timedelta(seconds=1 + i // 2)) for i in range(33)]
            rc, second, err = v.follow()
            assert rc == 0, err
            assert_exactly(second, new, "second run")
            rc, third, err = v.follow()
            assert rc == 0, err
            assert third == []
            rc, other, err = v.follow(name="other")  # another name starts afresh in the same file
            assert rc == 0, err
            assert_exactly(other, server.all_raw, "other name")

        return run

    side_by_side(scenario(True, True), scenario(False, False))


def test_interrupted_then_resumed_loses_nothing(variant: Any) -> None:
    def scenario(signum: int) -> Callable[[], None]:
        v = variant(newest_first=True, max_size=10, delay=0.1)

        def run() -> None:
            server = v.server
            server.fill(60, per_second=4)
            cmd = [TIDINGS, "follow", "opentransact", "--base-url", v.base_url, "--checkpoint", "cp.sqlite3",
                   "--name", "w", "--interval", "0.05", "--token", TOKEN]  # no --until-idle
            proc = subprocess.Popen(cmd, cwd=v.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert proc.stdout is not None and proc.stderr is not None
            lines = [proc.stdout.readline() for _ in range(15)]
            proc.send_signal(signum)
            proc.wait(timeout=20)
            text = "".join(lines) + proc.stdout.read()  # not communicate(): it would skip what readline buffered
            err = proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
            if signum == signal.SIGKILL and not text.endswith("\n"):
                text = text[: text.rfind("\n") + 1]  # killed in the middle of a line: not delivered
            first = [json.loads(line) for line in text.splitlines() if line.strip()]
            if signum != signal.SIGKILL:
                assert proc.returncode == 0, err
                clean(err)
            assert len(first) < 60
            server.delay = 0
            rc, second, err = v.follow()
            assert rc == 0, err
            ids = [e["id"] for e in first + second]
            assert set(ids) == {r["id"] for r in server.all_raw}
            if signum != signal.SIGKILL:  # a clean stop saves everything delivered: nothing comes twice
                assert len(ids) == len(set(ids))

        return run

    side_by_side(*(scenario(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)))


# -- faults ----------------------------------------------------------------------------------------


def test_faults_are_retried_and_nothing_is_lost(variant: Any) -> None:
    def scenario(newest_first: bool) -> Callable[[], None]:
        v = variant(newest_first=newest_first, max_size=10)

        def run() -> None:
            v.server.fill(50, per_second=5)
            v.server.faults = [500, None, "truncated", None, "reset", 502, None, "429", None, "slow",
                               503, None, "429-date", None, "error-200", None]
            rc, events, err = v.follow()
            assert rc == 0, err
            assert_exactly(events, v.server.all_raw, f"newest_first={newest_first}")
            assert not v.server.faults
            clean(err)

        return run

    side_by_side(scenario(True), scenario(False))


# -- auth and errors -------------------------------------------------------------------------------


def test_auth_schemes_and_errors(variant: Any) -> None:
    def basic_from_environment() -> None:
        v = variant(auth="basic")
        v.server.fill(5)
        rc, events, err = v.follow("--param", "auth=basic", token=None, env={"TIDINGS_TOKEN": TOKEN})
        assert rc == 0, err
        assert_exactly(events, v.server.all_raw)
        assert v.server.requests[0]["authorization"] == f"Basic {TOKEN}"

    def refused_scheme() -> None:
        v = variant(auth="basic")
        v.server.fill(5)
        line = one_error_line(*v.follow("--quiet"))
        assert "auth=basic" in line

    def wrong_token() -> None:
        v = variant()
        v.server.fill(5)
        line = one_error_line(*v.follow("--quiet", token="wrong-token-5678"))
        assert "token" in line.lower() and "wrong-token-5678" not in line

    def missing_token() -> None:
        v = variant()
        v.server.fill(5)
        line = one_error_line(*v.follow("--quiet", token=None, env={"TIDINGS_TOKEN": ""}))
        assert "token" in line.lower()

    def refused_parameter() -> None:
        v = variant()
        v.server.fill(5)
        line = one_error_line(*v.follow("--quiet", "--param", "action=bogus"))
        assert "10008" in line

    def wrong_base_url() -> None:
        v = variant()
        line = one_error_line(*follow(v.base_url.removesuffix("/v1") + "/v2", v.cwd, "--quiet"))
        assert "base URL" in line

    side_by_side(basic_from_environment, refused_scheme, wrong_token, missing_token, refused_parameter,
                 wrong_base_url)


# -- filters, --after, whole seconds -----------------------------------------------------------------


def test_filters_after_and_whole_seconds(variant: Any) -> None:
    def filters() -> None:
        v = variant()
        v.server.fill(10, metadata={"order": "42"})
        v.server.fill(10, metadata={"order": "7"})
        v.server.fill(10, metadata={"order": "42"}, subject_type="profiles")
        rc, events, err = v.follow("--param", "metadata.order=42", "--param", "subject-type=transactions")
        assert rc == 0, err
        assert_exactly(events, v.server.all_raw[:10])
        assert v.server.requests[0]["filter[metadata][order]"] == "42"
        assert v.server.requests[0]["filter[subject-type]"] == "transactions"

    def after(inclusive: bool) -> Callable[[], None]:
        def run() -> None:
            v = variant(inclusive=inclusive)
            v.server.fill(40, per_second=4)
            start = stamp(BASE + timedelta(seconds=3))
            rc, events, err = v.follow("--after", start)
            assert rc == 0, err
            assert v.server.requests[0]["filter[created-between][start]"] == start
            created = [r["attributes"]["created-at"] for r in v.server.all_raw]
            assert_exactly(events, [r for r, c in zip(v.server.all_raw, created, strict=True)
                                    if c > start or (inclusive and c == start)])

        return run

    def fractional(inclusive: bool) -> Callable[[], None]:
        """The server takes ``2021-08-11T04:38:14Z`` only: a fractional --after or overlap must not reach it."""

        def run() -> None:
            v = variant(inclusive=inclusive)
            v.server.fill(40, per_second=4)
            start = BASE + timedelta(seconds=5, milliseconds=500)  # whole-second activities: from second 6 on
            rc, events, err = v.follow("--after", start.isoformat(), "--param", "overlap=2.5")
            assert rc == 0, err
            assert_exactly(events, [r for r in v.server.all_raw
                                    if r["attributes"]["created-at"] >= stamp(BASE + timedelta(seconds=6))])
            new = v.server.add(v.server.newest())
            rc, events, err = v.follow("--param", "overlap=2.5")
            assert rc == 0, err
            assert_exactly(events, [new])

        return run

    side_by_side(filters, after(True), after(False), fractional(True), fractional(False))

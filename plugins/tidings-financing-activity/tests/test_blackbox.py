"""Black-box tests: the real ``tidings follow`` command against an independent emulator.

The emulator (``blackbox_server.py`` beside this file) is written from PROVIDERS.md and
the seed only and served on real loopback; the command runs as a subprocess in
``tmp_path`` so its checkpoint file lands there. Every test checks stdout's JSON lines:
each expected event exactly once, the envelope, ``raw`` exactly as served.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tidings._serve import serve_asgi

_spec = importlib.util.spec_from_file_location(
    "tidings_financing_activity_blackbox_server", Path(__file__).with_name("blackbox_server.py")
)
assert _spec is not None and _spec.loader is not None
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)

TIDINGS = str(Path(sys.executable).with_name("tidings"))
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TERMINAL = {"FNCD", "DFIN", "CANC"}
STATUSES = ["REGU", "REDU", "PNDG", "FNCD", "DFIN", "CANC"]


@contextmanager
def serving(server: Any) -> Iterator[str]:
    with serve_asgi(server.app, name="financing-blackbox") as url:
        yield url + "/v1"


def populate(server: Any, groups: list[int], start: datetime = T0, step: float = 1.0) -> list[dict[str, Any]]:
    """Groups of events sharing one time, ``step`` seconds apart; times alternate with/without ms."""
    made = []
    for g, size in enumerate(groups):
        at = start + timedelta(seconds=g * step)
        ms = g % 2 == 0
        if ms:
            at += timedelta(milliseconds=250)
        for i in range(size):
            made.append(server.add(bb.make_event(at, status=STATUSES[(g + i) % len(STATUSES)], ms=ms, extra=i == 1)))
    return made


def command(base: str, *args: str, token: str | None = "good-token") -> list[str]:
    cmd = [TIDINGS, "follow", "financing-activity", "--base-url", base, "--checkpoint", "cp.sqlite3",
           "--name", "bb", "--interval", "0.05", *args]
    if token is not None:
        cmd += ["--token", token]
    return cmd


def follow(tmp_path: Path, base: str, *args: str, token: str | None = "good-token",
           env: dict[str, str] | None = None, until_idle: bool = True) -> tuple[subprocess.CompletedProcess[str],
                                                                                 list[dict[str, Any]]]:
    cmd = command(base, *args, token=token)
    if until_idle:
        cmd.append("--until-idle")
    run = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=40,
                         env={**os.environ, **(env or {})})
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return run, lines


def check(lines: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Every expected event exactly once, nothing else, each envelope right and ``raw`` as served."""
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    want = {e["event_identification"]: e for e in expected}
    missing = set(want) - set(ids)
    extra = set(ids) - set(want)
    assert not missing and not extra, f"missing {len(missing)}, unexpected {len(extra)}"
    for line in lines:
        raw = want[line["id"]]
        assert line["raw"] == raw
        assert line["provider"] == "financing-activity"
        assert line["subject"] == raw["data_set_identification"]
        assert line["type"] == bb.FING
        assert line["status"] == raw["event_details"][0]["status"]
        assert line["terminal"] is (line["status"] in TERMINAL)
        occurred = line["occurred_at"]
        assert occurred.endswith(("Z", "+00:00"))
        assert bb.parse(occurred) == bb.parse(raw["event_date_time"])


def ok(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr


VARIANTS = {
    "inclusive-asc-page5": ({}, ["--page-size", "5"], [3, 7, 4, 5, 6, 3, 7, 1]),
    "exclusive-desc-page5": ({"inclusive": False, "order": "desc"}, ["--page-size", "5"], [3, 7, 4, 5, 6, 3, 7, 1]),
    "cap20-silently-big-tie": ({"cap": 20}, [], [5, 45, 3, 30, 2]),
    "cap3-page5-exclusive": ({"cap": 3, "inclusive": False}, ["--page-size", "5"], [4, 7, 3, 6, 5]),
    "desc-cap20-limit-param-404-past-end": ({"cap": 20, "order": "desc", "past_end": 404}, ["--param", "limit=50"],
                                            [7, 30, 3, 25]),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_new_watch_without_after_reads_everything_once(tmp_path: Path, variant: str) -> None:
    switches, args, groups = VARIANTS[variant]
    server = bb.Server(**switches)
    events = populate(server, groups, step=0.5)
    with serving(server) as base:
        run, lines = follow(tmp_path, base, *args)
    ok(run)
    check(lines, events)
    assert all("after" in q and "limit" in q and "offset" in q and "before" not in q for q in server.requests)
    assert server.auth_headers[0] == "Bearer good-token"


@pytest.mark.parametrize("inclusive", [True, False])
def test_after_starts_there_in_the_seed_form(tmp_path: Path, inclusive: bool) -> None:
    server = bb.Server(inclusive=inclusive)
    before = populate(server, [3, 4], start=T0 - timedelta(seconds=10))
    at = [server.add(bb.make_event(T0, ms=False)) for _ in range(3)]
    later = populate(server, [5, 6], start=T0 + timedelta(seconds=1))
    with serving(server) as base:
        run, lines = follow(tmp_path, base, "--after", "2024-05-01T14:00:00+02:00", "--page-size", "4")
    ok(run)
    ids = {line["id"] for line in lines}
    assert not ids & {e["event_identification"] for e in before}
    # events exactly at --after: whatever the server's bound says
    check(lines, later + (at if inclusive else []))
    assert server.requests[0]["after"] == "2024-05-01T12:00:00.000Z"
    assert all(bb.parse(q["after"]) >= T0 for q in server.requests)


@pytest.mark.parametrize("switches", [{"order": "desc"}, {"inclusive": False, "cap": 4}],
                         ids=["inclusive-desc", "exclusive-cap4"])
def test_resume_delivers_only_what_is_new_including_ties_and_late_events(tmp_path: Path,
                                                                          switches: dict[str, Any]) -> None:
    server = bb.Server(**switches)
    first = populate(server, [3, 5, 7], step=2.0)
    newest = bb.parse(first[-1]["event_date_time"])
    with serving(server) as base:
        run1, lines1 = follow(tmp_path, base, "--page-size", "5")
        ok(run1)
        check(lines1, first)
        tie = [server.add(bb.make_event(newest)) for _ in range(4)]  # same time as the newest delivered
        late = [server.add(bb.make_event(newest - timedelta(seconds=s), ms=False)) for s in (3, 8)]  # older
        fresh = populate(server, [6, 2], start=newest + timedelta(seconds=1))
        run2, lines2 = follow(tmp_path, base, "--page-size", "5")
        ok(run2)
        check(lines2, tie + late + fresh)
        run3, lines3 = follow(tmp_path, base, "--page-size", "5")
        ok(run3)
        assert lines3 == []


def test_an_event_visible_late_during_a_run_is_delivered(tmp_path: Path) -> None:
    server = bb.Server()
    events = populate(server, [4, 4, 4], step=1.0)
    newest = bb.parse(events[-1]["event_date_time"])
    late = server.add(bb.make_event(newest - timedelta(seconds=2)), visible_from_request=3)
    with serving(server) as base:
        run, lines = follow(tmp_path, base, "--page-size", "5")
    ok(run)
    check(lines, [*events, late])


def test_faults_are_retried_and_lose_nothing(tmp_path: Path) -> None:
    server = bb.Server()
    events = populate(server, [3, 6, 2, 5, 4], step=1.0)
    server.faults.extend(["500", "truncate", None, "502", "429", None, "reset", "503", "429date", "slow", None])
    with serving(server) as base:
        run, lines = follow(tmp_path, base, "--page-size", "4")
    ok(run)
    check(lines, events)
    assert not server.faults


def test_oauth_client_credentials_refresh_once_on_401(tmp_path: Path) -> None:
    server = bb.Server(tokens=(), clients={"cid": "csecret-123456"}, audience="aud-1")
    events = populate(server, [3, 5, 4], step=1.0)
    server.token_faults.extend(["503", "truncate"])
    server.faults.extend([None, None, "expire", None])
    with serving(server) as base:
        params = ["--param", "client_id=cid", "--param", "client_secret=csecret-123456", "--param", "audience=aud-1"]
        run, lines = follow(tmp_path, base, "--page-size", "4", *params, token=None)
    ok(run)
    check(lines, events)
    assert len(server.token_bodies) == 2  # the first token, then one refresh after the 401
    assert server.token_bodies[0] == {"client_id": "cid", "client_secret": "csecret-123456", "audience": "aud-1",
                                      "grant_type": "client_credentials"}
    assert "csecret-123456" not in run.stderr


def test_static_token_from_the_environment(tmp_path: Path) -> None:
    server = bb.Server(tokens=("env-token",))
    events = populate(server, [2, 3])
    with serving(server) as base:
        run, lines = follow(tmp_path, base, token=None, env={"TIDINGS_TOKEN": "env-token"})
    ok(run)
    check(lines, events)
    assert set(server.auth_headers) == {"Bearer env-token"}


@pytest.mark.parametrize("how", ["token", "secret"])
def test_refused_credentials_end_with_one_error_line_and_no_secret(tmp_path: Path, how: str) -> None:
    server = bb.Server(clients={"cid": "right-secret"})
    populate(server, [2])
    secret = "wrong-credential-0123456789"
    with serving(server) as base:
        if how == "token":
            run, lines = follow(tmp_path, base, token=secret)
        else:
            run, lines = follow(tmp_path, base, "--param", "client_id=cid", "--param", f"client_secret={secret}",
                                token=None)
    assert run.returncode != 0
    assert lines == []
    assert secret not in run.stderr and secret not in run.stdout
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "401" in errors[0], run.stderr


@pytest.mark.parametrize(("signum", "order"), [(signal.SIGTERM, "asc"), (signal.SIGINT, "desc")],
                         ids=["sigterm-asc", "sigint-desc"])
def test_interrupt_then_resume_loses_nothing(tmp_path: Path, signum: int, order: str) -> None:
    server = bb.Server(order=order, slow=0.04)
    events = populate(server, [3, 4, 5, 3, 6, 4, 3, 5], step=1.0)
    with serving(server) as base:
        proc = subprocess.Popen(command(base, "--page-size", "4"), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        first: list[dict[str, Any]] = []
        while len(first) < 6:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            first.append(json.loads(line))
        proc.send_signal(signum)
        # read through the file object: its buffer may already hold lines (communicate() would skip them)
        first += [json.loads(line) for line in proc.stdout.read().splitlines() if line.strip()]
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
        assert len(first) < len(events)
        run, rest = follow(tmp_path, base, "--page-size", "4")
    ok(run)
    check(first + rest, events)

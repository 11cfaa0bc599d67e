"""The `tidings` command: its fixed contract, as users and scripts rely on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tidings.cli import main

from tiny import TinyEmulator

TIDINGS = str(Path(sys.executable).with_name("tidings"))


@pytest.fixture
def emulator(tiny_feed: Any) -> Any:
    em = TinyEmulator()
    em.scenario(10)
    with em.serve() as url:
        em.url = url
        yield em


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_providers_lists_the_installed_plugins_as_json() -> None:
    result = run("providers", "--json")
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["bank-sync"] == {
        "name": "bank-sync", "distribution": "tidings-bank-sync", "version": "0.1.0", "kind": "tracker",
        "description": rows["bank-sync"]["description"], "options": rows["bank-sync"]["options"],
    }
    assert {r["kind"] for r in rows.values()} == {"feed", "tracker"}
    assert all(r["description"] for r in rows.values())


def test_follow_prints_json_lines_and_resumes(emulator: Any, tmp_path: Path) -> None:
    args = ["follow", "tiny-feed", "--base-url", emulator.url, "--until-idle", "--checkpoint", str(tmp_path / "c.db"),
            "--page-size", "3", "--interval", "0"]
    first = run(*args, env={"TIDINGS_TOKEN": emulator.token})
    assert first.exit_code == 0, first.output
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert [e["id"] for e in lines] == [f"e{i:03d}" for i in range(10)]
    assert set(lines[0]) >= {"provider", "id", "subject", "type", "status", "occurred_at", "terminal", "raw"}
    assert lines[0]["raw"] == emulator.server.events[0] and lines[0]["occurred_at"].endswith("Z")
    emulator.server.add("late", 100)
    second = run(*args, "--token", emulator.token)
    assert [json.loads(line)["id"] for line in second.stdout.splitlines()] == ["late"]


def test_errors_are_one_line_without_secrets(emulator: Any, tmp_path: Path) -> None:
    secret = "wrong-s3cret-token"
    result = CliRunner().invoke(main, ["follow", "tiny-feed", "--base-url", emulator.url, "--token", secret,
                                       "--checkpoint", str(tmp_path / "c.db"), "--quiet"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tidings: error: [tiny-feed]")
    assert "check the token" in result.stderr and secret not in result.stderr and "Traceback" not in result.stderr


def test_bad_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    bad_param = CliRunner().invoke(main, ["follow", "bank-sync", "--param", "novalue", "--checkpoint",
                                          str(tmp_path / "c.db")])
    assert bad_param.exit_code == 2 and "--param takes KEY=VALUE" in bad_param.stderr
    unknown = CliRunner().invoke(main, ["follow", "nope", "--checkpoint", str(tmp_path / "c.db")])
    assert unknown.exit_code == 2 and "no provider called 'nope'" in unknown.stderr
    bad_time = CliRunner().invoke(main, ["follow", "financing-activity", "--after", "yesterday-ish",
                                         "--checkpoint", str(tmp_path / "c.db")])
    assert bad_time.exit_code == 2 and "cannot read the time" in bad_time.stderr


@pytest.mark.parametrize(
    ("provider", "kind"),
    [("bank-sync", "tracker"), ("aml-session", "tracker"), ("request-status", "tracker"),
     ("financing-activity", "feed"), ("opentransact", "feed")],
)
def test_follow_sandbox_streams_json_lines_for_every_provider(provider: str, kind: str, tmp_path: Path) -> None:
    until_idle = ["--until-idle"] if kind == "feed" else []
    args = [TIDINGS, "follow", provider, "--sandbox", "--interval", "0.1", *until_idle]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events and all(e["provider"] == provider for e in events)
    assert len({e["id"] for e in events}) == len(events)
    if kind == "tracker":
        assert events[-1]["terminal"]
        # progress: subjects done / open, and the terminal outcomes (done / open / failed at a glance)
        summary = proc.stderr.strip().splitlines()[-1]
        assert "done, 0 open" in summary and "terminal:" in summary
        for outcome in {e["status"] or e["type"] for e in events if e["terminal"]}:
            assert f"{outcome} " in summary
    assert not (tmp_path / "tidings-checkpoints.sqlite3").exists()  # a sandbox never touches real positions
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stderr
    assert again.stdout  # a new emulator, a new run: no 404 about the last run's queue, no empty "(ended)"


def test_sigterm_stops_a_feed_cleanly_with_its_position_saved(tmp_path: Path) -> None:
    proc = subprocess.Popen([TIDINGS, "follow", "financing-activity", "--sandbox", "--interval", "0.1"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # type: ignore[union-attr]
    assert json.loads(first)["provider"] == "financing-activity"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM, position saved" in err


def test_sandbox_serves_until_interrupted_and_prints_its_url(tmp_path: Path) -> None:
    proc = subprocess.Popen([TIDINGS, "sandbox", "opentransact", "--faults", "latency=0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        follow = subprocess.run([TIDINGS, "follow", "opentransact", "--base-url", url, "--until-idle", "--quiet",
                                 "--token", "sandbox-token", "--after", "2000-01-01T00:00:00Z"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert follow.returncode == 0, follow.stderr
        assert follow.stdout.count("\n") > 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_demo_runs_every_provider_to_its_end_in_under_a_minute(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([TIDINGS, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "160"})
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    for name in ("financing-activity", "opentransact", "aml-session", "request-status", "bank-sync"):
        assert name in proc.stderr
    assert elapsed < 60


def test_environment_switches_limit_block_and_trace_plugins(tmp_path: Path) -> None:
    def names(**env: str) -> tuple[list[str], str]:
        proc = subprocess.run([TIDINGS, "providers", "--json"], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **env})
        assert proc.returncode == 0, proc.stderr
        return sorted(r["name"] for r in json.loads(proc.stdout)), proc.stderr

    assert names(TIDINGS_LOAD_PLUGINS="bank-sync,opentransact")[0] == ["bank-sync", "opentransact"]
    assert "bank-sync" not in names(TIDINGS_BLOCK_PLUGINS="bank-sync")[0]
    assert names(TIDINGS_LOAD_PLUGINS="")[0] == []
    traced = subprocess.run([TIDINGS, "follow", "bank-sync", "--sandbox", "--quiet"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env={**os.environ, "TIDINGS_TRACE_PLUGINS": "1"})
    assert traced.returncode == 0 and "fetch_page" in traced.stderr and "parse_event" in traced.stderr


def test_a_reader_that_stops_early_ends_the_follow_quietly_with_the_position_saved(tmp_path: Path) -> None:
    args = [TIDINGS, "follow", "financing-activity", "--sandbox", "--until-idle", "--interval", "0.1", "--quiet",
            "--checkpoint", "c.db"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]  # like `| head -1`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err and err == ""
    rest = subprocess.run([*args, "--rebase"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    ids = [json.loads(line)["id"] for line in rest.stdout.splitlines()]
    assert json.loads(first)["id"] not in ids  # delivered before the pipe closed: not again
    assert len(ids) == len(set(ids)) > 0


def test_a_sandbox_run_leaves_the_users_checkpoint_file_alone(tmp_path: Path) -> None:
    real = tmp_path / "tidings-checkpoints.sqlite3"
    real.write_bytes(b"")  # the user's file (an empty SQLite file is a valid database)
    proc = subprocess.run([TIDINGS, "follow", "financing-activity", "--sandbox", "--until-idle", "--quiet",
                           "--interval", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout and real.read_bytes() == b""
    assert not (tmp_path / "tidings-checkpoints.sqlite3-wal").exists()


def test_resuming_against_another_base_url_is_refused_naming_both(tmp_path: Path) -> None:
    args = ["follow", "financing-activity", "--sandbox", "--until-idle", "--quiet", "--interval", "0",
            "--checkpoint", str(tmp_path / "c.db")]
    first = subprocess.run([TIDINGS, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([TIDINGS, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stdout == ""
    (line,) = again.stderr.strip().splitlines()
    urls = [word.rstrip(",:") for word in line.split() if word.startswith("http://127.0.0.1:")]
    assert len(set(urls)) == 2 and "--rebase" in line and "--name" in line, line
    rebased = subprocess.run([TIDINGS, *args, "--rebase"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert rebased.returncode == 0, rebased.stderr
    assert rebased.stdout == ""  # the same emulated feed, carried over: nothing delivered twice


def test_a_tracker_that_had_ended_says_so_and_how_to_follow_new_work(tmp_path: Path) -> None:
    from tidings_request_status.emulator import RequestStatusEmulator

    emulator = RequestStatusEmulator()
    scenario = emulator.scenario(3)
    with emulator.serve() as url:
        pairs = [a for k, vs in scenario.params.items() for v in (vs if isinstance(vs, list) else [vs])
                 for a in ("--param", f"{k}={v}")]
        args = ["follow", "request-status", "--base-url", url, "--token", emulator.token, *pairs,
                "--checkpoint", str(tmp_path / "c.db"), "--interval", "0.05"]
        first = run(*args)
        assert first.exit_code == 0, first.output
        assert first.stderr.strip().splitlines()[-1].endswith("(ended)")
        again = run(*args)
    assert again.exit_code == 0 and again.stdout == ""
    assert "had already ended" in again.stderr and "--name" in again.stderr


def test_until_idle_on_a_tracker_with_subjects_open_does_not_say_ended(tmp_path: Path) -> None:
    from tidings.sandbox import Clock
    from tidings_request_status.emulator import RequestStatusEmulator

    emulator = RequestStatusEmulator()
    scenario = emulator.scenario(3)
    emulator.clock = Clock(speed=0.0)  # nothing finishes while we look
    with emulator.serve() as url:
        pairs = [a for k, vs in scenario.params.items() for v in (vs if isinstance(vs, list) else [vs])
                 for a in ("--param", f"{k}={v}")]
        result = run("follow", "request-status", "--base-url", url, "--token", emulator.token, *pairs,
                     "--checkpoint", str(tmp_path / "c.db"), "--until-idle", "--interval", "0")
    assert result.exit_code == 0, result.output
    summary = result.stderr.strip().splitlines()[-1]
    assert "(ended)" not in summary and "still open" in summary, summary

"""Black-box tests: the real ``tidings follow aml-session`` command against an independent server.

The server (``aml_blackbox_server.py``) is written from PROVIDERS.md and the seed
only; these tests look at nothing but the command's stdout, stderr, exit code,
files it writes and what the server saw.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aml_blackbox_server import BlackboxAml

TIDINGS = str(Path(sys.executable).with_name("tidings"))
TYPES = {"JsonDataReady", "ReportReady", "AllDone", "Failed"}


def follow(url: str, token: str, *params: str, cwd: Path, extra: tuple[str, ...] = (),
           timeout: float = 30) -> tuple[int, list[dict[str, Any]], str]:
    args = [TIDINGS, "follow", "aml-session", "--base-url", url, "--token", token, "--quiet", *extra]
    for p in params:
        args += ["--param", p]
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()], proc.stderr


def check_envelopes(server: BlackboxAml, events: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), Counter(ids)
    for e in events:
        assert e["provider"] == "aml-session"
        assert e["type"] in TYPES
        assert e["subject"] in server.sessions
        assert e["terminal"] is (e["type"] in ("AllDone", "Failed"))
        assert e["occurred_at"].endswith(("Z", "+00:00"))
        datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
        raw = e["raw"]
        assert raw in server.bodies  # the status body exactly as the server sent it
        assert raw["sessionId"] == e["subject"] and e["status"] == raw["status"]
        if e["terminal"]:
            assert raw["status"] == {"AllDone": "ALL_DONE", "Failed": "FAILED"}[e["type"]]


def expected(server: BlackboxAml, sid: str) -> list[tuple[str, str | None]]:
    """(type, entity) in delivery order for a finished session."""
    s = server.sessions[sid]
    out: list[tuple[str, str | None]] = []
    for i, (name, (_, _, state)) in enumerate(s.plan.items()):
        if state == "READY":
            out.append(("JsonDataReady" if i == 0 else "ReportReady", name))
    out.append(("AllDone" if s.final == "ALL_DONE" else "Failed", None))
    return out


def got(events: list[dict[str, Any]], sid: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for e in events:
        if e["subject"] == sid:
            entity = e["id"].split(":ReportReady:", 1)[1] if e["type"] == "ReportReady" else None
            if e["type"] == "JsonDataReady":
                entity = next(n for n in e["raw"]["results"] if "json" in n.lower())
            out.append((e["type"], entity))
    return out


@pytest.fixture
def server() -> Any:
    box = BlackboxAml()
    with box.serve() as url:
        box.url = url  # type: ignore[attr-defined]
        yield box


def test_plain_all_done_exits_zero(server: BlackboxAml, tmp_path: Path) -> None:
    """The command alone, no webhook params, default interval: every event once, exit 0."""
    server.entities = ("jsonData", "aml-report", "ownership-report")
    code, events, err = follow(server.url, server.token, "country=no", "identifier=923609016", cwd=tmp_path)
    assert code == 0, err
    check_envelopes(server, events)
    [sid] = server.sessions
    assert got(events, sid) == expected(server, sid)
    assert events[-1]["type"] == "AllDone" and events[-1]["terminal"]
    assert server.posts == [{"identifier": "923609016", "nationality": "NO"}]  # no webhooks field unless asked


def test_plain_failed_exits_zero(server: BlackboxAml, tmp_path: Path) -> None:
    code, events, err = follow(server.url, server.token, "country=no", "identifier=999999999", cwd=tmp_path)
    assert code == 0, err
    check_envelopes(server, events)
    [sid] = server.sessions
    assert got(events, sid) == [("JsonDataReady", "jsonData"), ("Failed", None)]


def test_entity_failed_extra_fields_own_names(server: BlackboxAml, tmp_path: Path) -> None:
    """An entity FAILED while the session goes on; extra fields; report names the server chose."""
    server.entities = ("jsonData", "sanctions-report", "AML_REPORT_2", "roles")
    server.failed_entities = ("sanctions-report",)
    server.extra_fields = True
    code, events, err = follow(server.url, server.token, "country=se", "identifier=5560000001",
                               cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    [sid] = server.sessions
    assert got(events, sid) == [("JsonDataReady", "jsonData"), ("ReportReady", "AML_REPORT_2"),
                                ("ReportReady", "roles"), ("AllDone", None)]
    assert server.posts[0]["nationality"] == "SE"


def test_faults_on_post_and_get(server: BlackboxAml, tmp_path: Path) -> None:
    server.post_faults = ["503", "429-date"]
    server.get_faults = ["500", "truncate", "ok", "429", "reset", "ok", "slow", "429-date", "ok", "502", "503"]
    code, events, err = follow(server.url, server.token, "country=fi", "identifier=01120389",
                               cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    assert not server.post_faults
    [sid] = server.sessions
    assert got(events, sid) == expected(server, sid)


def test_a_post_whose_answer_is_lost_is_reported_never_posted_again(server: BlackboxAml, tmp_path: Path) -> None:
    """A POST whose answer is lost may have started a session: it is reported, not sent again (issue 14)."""
    server.post_faults = ["reset"]
    code, _events, err = follow(server.url, server.token, "country=no", "identifier=923609016",
                                cwd=tmp_path, extra=("--interval", "0.1"))
    assert code != 0 and "not sent again" in err
    code, _events, err = follow(server.url, server.token, "country=no", "identifier=923609016",
                                cwd=tmp_path, extra=("--interval", "0.1"))  # the resume reports it again
    assert code != 0 and "not sent again" in err
    assert len(server.sessions) == 1


def test_follow_existing_session(server: BlackboxAml, tmp_path: Path) -> None:
    session = server.new_session("923609016")
    code, events, err = follow(server.url, server.token, f"session_id={session.session_id}",
                               cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    assert got(events, session.session_id) == expected(server, session.session_id)
    assert server.posts == []


def test_follow_unknown_session_is_one_line_error(server: BlackboxAml, tmp_path: Path) -> None:
    code, events, err = follow(server.url, server.token, "session_id=nope", cwd=tmp_path)
    assert code != 0 and events == []
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_batch(server: BlackboxAml, tmp_path: Path) -> None:
    ids = ["923609016", "999999999", "914778271"]
    code, events, err = follow(server.url, server.token, "country=no", *(f"identifier={i}" for i in ids),
                               cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    assert sorted(p["identifier"] for p in server.posts) == sorted(ids)
    for sid in server.sessions:
        assert got(events, sid) == expected(server, sid)


def test_save_json_and_reports(server: BlackboxAml, tmp_path: Path) -> None:
    server.entities = ("jsonData", "aml-report", "ownership")
    server.result_faults = ["503", "truncate", "409"]
    code, events, err = follow(server.url, server.token, "country=no", "identifier=923609016",
                               "reports=aml-report,ownership", "save_json=out", "save_reports=out",
                               cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    [session] = server.sessions.values()
    sid = session.session_id
    assert server.posts[0]["reports"] == ["aml-report", "ownership"]
    saved = json.loads((tmp_path / "out" / f"{sid}.json").read_bytes())
    assert saved == server.organisation(session)
    for name in ("aml-report", "ownership"):
        assert (tmp_path / "out" / f"{sid}-{name}.pdf").read_bytes() == server.pdf(session, name)
    assert not list((tmp_path / "out").glob("*.part"))


def test_json_entity_named_otherwise_and_object_results(server: BlackboxAml, tmp_path: Path) -> None:
    """The server calls the JSON entity ``JSON_DATA`` and gives each entity as ``{"status": …}``."""
    server.entities = ("JSON_DATA", "aml-report")
    server.object_results = True
    code, events, err = follow(server.url, server.token, "country=no", "identifier=923609016", "save_json=out",
                               "save_reports=out", cwd=tmp_path, extra=("--interval", "0.1"))
    assert code == 0, err
    check_envelopes(server, events)
    [session] = server.sessions.values()
    assert got(events, session.session_id) == expected(server, session.session_id)
    assert json.loads((tmp_path / "out" / f"{session.session_id}.json").read_bytes()) == server.organisation(session)


@pytest.mark.parametrize("mode", ["twice", "late"])
def test_webhooks_signed(server: BlackboxAml, tmp_path: Path, mode: str) -> None:
    """Webhooks wake the watch (a long poll interval would otherwise make it slow); twice or late is harmless."""
    secret = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="
    server.webhook_secret = secret
    server.webhook_mode = mode
    started = time.monotonic()
    code, events, err = follow(server.url, server.token, "country=no", "identifier=923609016", cwd=tmp_path,
                               extra=("--interval", "6", "--webhook-listen", "127.0.0.1:0",
                                      "--webhook-secret", secret))
    took = time.monotonic() - started
    assert code == 0, err
    check_envelopes(server, events)
    [sid] = server.sessions
    assert got(events, sid) == expected(server, sid)
    assert server.posts[0]["webhooks"]
    assert took < 5, took  # the poll interval is 6 s: the webhooks made it poll
    answers = [a for a in server.webhook_answers if a[2] not in (0, 503)]  # 0, 503: sent after the watch ended
    assert answers and all(a[2] == 200 for a in answers), server.webhook_answers


def test_webhooks_never(server: BlackboxAml, tmp_path: Path) -> None:
    server.webhook_mode = "never"
    code, events, err = follow(server.url, server.token, "country=no", "identifier=923609016", cwd=tmp_path,
                               extra=("--interval", "0.1", "--webhook-listen", "127.0.0.1:0"))
    assert code == 0, err
    [sid] = server.sessions
    assert got(events, sid) == expected(server, sid)


def test_sigterm_then_resume(server: BlackboxAml, tmp_path: Path) -> None:
    server.step = 0.5
    server.entities = ("jsonData", "aml-report", "ownership")
    args = [TIDINGS, "follow", "aml-session", "--base-url", server.url, "--token", server.token, "--quiet",
            "--interval", "0.1", "--checkpoint", "cp.sqlite3", "--name", "w1",
            "--param", "country=no", "--param", "identifier=923609016"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # JsonDataReady arrived
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    events1 = [json.loads(x) for x in [first, *out.splitlines()] if x.strip()]
    assert events1 and not any(e["terminal"] for e in events1)
    code, events2, err = follow(server.url, server.token, "country=no", "identifier=923609016",
                                cwd=tmp_path, extra=("--interval", "0.1", "--checkpoint", "cp.sqlite3",
                                                     "--name", "w1"))
    assert code == 0, err
    assert len(server.posts) == 1  # the resumed run did not start another session
    [sid] = server.sessions
    both = events1 + events2
    check_envelopes(server, both)
    assert got(both, sid) == expected(server, sid)


def test_wrong_token(server: BlackboxAml, tmp_path: Path) -> None:
    code, events, err = follow(server.url, "wrong-token-abc123", "country=no", "identifier=923609016",
                               cwd=tmp_path)
    assert code != 0 and events == []
    assert len(err.strip().splitlines()) == 1, err
    assert "wrong-token-abc123" not in err and "Traceback" not in err

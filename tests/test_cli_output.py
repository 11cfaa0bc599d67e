"""The CLI's JSON lines: msgspec-encoded, a page per write, valid UTF-8 whatever the strings hold."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import tidings
import tidings._http
from click.testing import CliRunner
from tidings import Event
from tidings._lines import line as _line
from tidings.cli import main

from tiny import TinyEmulator, TinyServer, make_watch

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def an_event(raw: Any, **changes: Any) -> Event:
    fields: dict[str, Any] = {"provider": "p", "id": "e1", "subject": "s", "type": "note", "status": None,
                              "occurred_at": WHEN, "raw": raw}
    fields.update(changes)
    return Event(**fields)


def test_a_lone_surrogate_becomes_a_json_escape_in_valid_utf8() -> None:
    line = _line(an_event({"note": "bad \ud800 and good é"}, subject="\udfff"))
    text = line.decode("utf-8")  # strict: raises on a surrogate written raw
    assert line.endswith(b"\n") and "\\ud800" in text
    back = json.loads(text)
    assert back["raw"]["note"] == "bad \ud800 and good é" and back["subject"] == "\udfff"


def test_lines_are_the_same_json_as_the_event() -> None:
    event = an_event({"n": 1, "f": 1.5, "list": [None, True], "text": "é"})
    assert json.loads(_line(event)) == json.loads(json.dumps(event.to_json(), default=str))


def test_an_event_that_cannot_be_written_is_undeliverable() -> None:
    raw: dict[str, Any] = {}
    raw["self"] = raw  # no JSON form at all
    with pytest.raises(tidings.Undeliverable, match="JSON line"):
        _line(an_event(raw))


@pytest.mark.anyio
async def test_an_undeliverable_event_is_dead_lettered_and_the_watch_goes_on(
    tiny_feed: Any, server: TinyServer
) -> None:
    got: list[str] = []

    def handler(event: Event) -> None:
        if event.id == "e04":
            raise tidings.Undeliverable("cannot be written")
        got.append(event.id)

    watch = make_watch(server)  # on_handler_error="stop": still set aside, not retried forever
    await watch.run(handler)
    assert got == [f"e{i:02d}" for i in range(12) if i != 4]
    letters = await watch.dead_letters()
    assert [(d.reason, d.raw["id"]) for d in letters] == [("cannot be written", "e04")]


def test_follow_writes_valid_utf8_lines_for_a_lone_surrogate(
    tiny_feed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tidings._http, "_fast_loads", None)  # json.loads reads the escaped surrogate
    emulator = TinyEmulator()
    emulator.scenario(4)
    emulator.server.events[1]["kind"] = "odd \ud800"
    with emulator.serve() as url:
        result = CliRunner().invoke(
            main, ["follow", "tiny-feed", "--base-url", url, "--token", emulator.token, "--until-idle", "--quiet",
                   "--checkpoint", str(tmp_path / "c.db"), "--page-size", "3", "--interval", "0"],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    lines = result.stdout_bytes.decode("utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["e000", "e001", "e002", "e003"]
    assert json.loads(lines[1])["type"] == "odd \ud800"

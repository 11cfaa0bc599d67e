"""The CLI's progress line counts a tracker's subjects, not its streams."""

from __future__ import annotations

import pytest
import tidings
from tidings._progress import Status

from tiny import TinyServer, make_watch

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("tiny_tracker")]


async def test_one_stream_of_three_subjects_counts_three() -> None:
    srv = TinyServer()
    srv.add("a1", 0, "a", kind="done")
    srv.add("b1", 1, "b", kind="note")
    srv.add("b2", 2, "b", kind="done")
    srv.add("c1", 3, "c", kind="done")
    watch = make_watch(srv, provider="tiny-tracker", params={"subject": ["a", "b", "c"]})
    status = Status(watch, enabled=False)
    lines: list[str] = []

    def handler(event: tidings.Event) -> None:
        status.count(event)
        lines.append(status.line())

    await watch.run(handler)
    assert "1/3 done, 2 open" in lines[0]  # before: "0/1 done, 1 open" (the one stream)
    assert "1/3 done, 2 open" in lines[1] and "2/3 done, 1 open" in lines[2]
    assert "3/3 done, 0 open" in status.line()
    assert "terminal: done 3" in status.line()

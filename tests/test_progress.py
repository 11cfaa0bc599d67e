"""The CLI's progress line counts a tracker's subjects, not its streams."""

from __future__ import annotations

import pytest
import tidings
from tidings._progress import Status

from tiny import TinyServer, make_watch

pytestmark = pytest.mark.usefixtures("tiny_tracker")


@pytest.mark.anyio
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


def three_subjects() -> TinyServer:
    srv = TinyServer()
    for s in "abc":
        srv.add(f"{s}1", 0, s, kind="note")
        srv.add(f"{s}2", 1, s, kind="done")
    return srv


@pytest.mark.parametrize("call", ["collect", "run_sync"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_sync_calls_show_a_bar_on_stderr_and_not_with_progress_false(
    call: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def go(**kwargs: object) -> None:
        watch = make_watch(three_subjects(), provider="tiny-tracker", params={"subject": ["a", "b", "c"]})
        if call == "collect":
            tidings.collect(watch, backend=backend, **kwargs)  # type: ignore[arg-type]
        else:
            tidings.run_sync(watch, lambda e: None, backend=backend, **kwargs)  # type: ignore[arg-type]

    go()
    out, err = capsys.readouterr()
    assert out == ""  # never on stdout
    assert "tiny-tracker" in err and "6 events" in err and "3/3 done, 0 open" in err
    go(progress=False)
    assert capsys.readouterr() == ("", "")

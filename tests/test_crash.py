"""A process killed with SIGKILL at any point loses nothing; two processes share one SQLite file safely."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent

FOLLOWER = """
import sys, time
sys.path.insert(0, {here!r})
import anyio, tidings
from tiny import TinyFeed, TinyServer
tidings.register(TinyFeed())
server = TinyServer()
for i in range({n}):
    server.add(f"e{{i:04d}}", i // 3)
out = open({out!r}, "a")
def handler(event):
    out.write(event.id + "\\n"); out.flush()
    time.sleep(0.002)
watch = tidings.Watch("tiny-feed", transport=server.transport(), store=tidings.SQLiteStore({db!r}),
                      until_idle=True, interval=0, page_size=7)
anyio.run(watch.run, handler)
print("done")
"""


def _start(tmp_path: Path, n: int) -> subprocess.Popen[str]:
    code = FOLLOWER.format(here=str(HERE), n=n, out=str(tmp_path / "out.txt"), db=str(tmp_path / "cp.sqlite3"))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("kill_after", [0.3, 0.6, 0.9])
def test_sigkill_at_any_point_loses_nothing(tmp_path: Path, kill_after: float) -> None:
    n = 300
    proc = _start(tmp_path, n)
    out = tmp_path / "out.txt"
    deadline = time.monotonic() + 20
    while (not out.exists() or len(out.read_text().split()) < n * kill_after / 3) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = out.read_text().split()
    assert 0 < len(before) < n, "the kill should land mid-run"
    proc = _start(tmp_path, n)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    ids = out.read_text().split()
    assert set(ids) == {f"e{i:04d}" for i in range(n)}
    # repeats are only the page in progress when the process died (at most one page of 7)
    assert len(ids) - n <= 7


WRITER = """
import sys, anyio, tidings
async def main():
    store = tidings.SQLiteStore({db!r})
    for i in range(200):
        await store.commit("w{k}", "s", {{"cursor": i, "open": None, "ended": False}}, (), [str(i)], 50)
    await store.aclose()
anyio.run(main)
"""


def test_two_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.sqlite3")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER.format(db=db, k=k)], stderr=subprocess.PIPE, text=True)
        for k in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = dict(con.execute("SELECT watch, state FROM streams").fetchall())
    assert set(rows) == {"w0", "w1"} and all('"cursor": 199' in v for v in rows.values())
    for k in ("w0", "w1"):  # the recent ids: the last 50, in order
        chunks = con.execute("SELECT ids FROM delivered_ids WHERE watch=? ORDER BY seq", (k,))
        assert [i for (text,) in chunks for i in json.loads(text)] == [str(i) for i in range(150, 200)]

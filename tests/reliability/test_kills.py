"""SIGKILL at random moments, then resume: each provider over loopback HTTP against its emulator.

The emulator runs in this process (its state outlives the follower); the follower is a child
process with a SQLite checkpoint file, writing each delivered id to a file and flushing. It is
killed at a random moment, again and again, then left to finish. Lost = 0 always, and repeats
stay within one page per kill. CI runs a handful of kills per provider; ``TIDINGS_SOAK=1`` at
least 50. A table is printed at the end (``-s`` shows it).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tidings
from reliability.emulators import EMULATORS, PROVIDERS
from tidings.sandbox import Clock

SOAK = os.environ.get("TIDINGS_SOAK") == "1"
KILLS = 50 if SOAK else 3
ROWS: list[tuple[Any, ...]] = []

FOLLOWER = """
import json, sys, time, anyio, tidings
spec = json.loads(sys.argv[1])
out = open(spec["out"], "a")
def handler(event):
    out.write(event.id + "\\n"); out.flush()
    time.sleep(spec["work"])  # a handler doing some work: the run lasts long enough to be killed in
watch = tidings.Watch(spec["provider"], base_url=spec["url"], token=spec["token"], params=spec["params"],
                      page_size=spec["page_size"], after=spec["after"], store=tidings.SQLiteStore(spec["db"]),
                      until_idle=spec["feed"], interval=0.01, max_interval=0.05, retry_base_wait=0.01,
                      retry_max_wait=0.05)
anyio.run(watch.run, handler)
print("done")
"""


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    if ROWS:
        head = ("provider", "kills", "expected", "delivered", "lost", "repeated", "pages in flight")
        print("\n\nSIGKILL and resume, loopback HTTP\n" + "\n".join(
            " | ".join(str(c) for c in row) for row in [head, *ROWS]))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_random_kills_lose_nothing(provider: str, tmp_path: Path) -> None:
    rng = random.Random(provider)
    emulator = EMULATORS[provider](seed=7, clock=Clock(speed=20.0))
    scenario = emulator.scenario(150 if SOAK else 40)
    out = tmp_path / "out.txt"
    kills = 0
    with emulator.serve() as url:
        spec = {"provider": provider, "url": url, "token": emulator.token, "params": scenario.params,
                "page_size": scenario.page_size, "after": None if scenario.after is None else str(scenario.after),
                "db": str(tmp_path / "cp.sqlite3"), "out": str(out),
                "feed": tidings.providers()[provider].info.kind == "feed", "work": 0.4 if SOAK else 0.02}
        deadline = time.monotonic() + (400 if SOAK else 60)
        while time.monotonic() < deadline:
            child = subprocess.Popen([sys.executable, "-c", FOLLOWER, json.dumps(spec)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            if kills < KILLS:
                time.sleep(rng.uniform(0.2, 1.5))  # the interpreter starts in ~0.3 s: some kills land in start
                if child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait()
                    kills += 1
                    continue
            stdout, stderr = child.communicate(timeout=120)
            assert child.returncode == 0, stderr[-2000:]
            if kills >= KILLS or "done" in stdout:
                break
    expected = emulator.expected_after_kills(scenario)  # a tracker's are known once its work was started
    ids = out.read_text().split() if out.exists() else []
    counts = Counter(ids)
    lost = expected - set(ids)
    repeated = sum(n - 1 for n in counts.values())
    page = scenario.page_size or 100
    # each stream has its own page in progress (a tracker follows one stream per id it was given)
    streams = max([len(v) for v in scenario.params.values() if isinstance(v, (list, tuple))] or [1])
    ROWS.append((provider, kills, len(expected), len(set(ids) & expected), len(lost), repeated,
                 f"{page} x {streams} streams"))
    assert not lost, f"lost {sorted(lost)[:10]}"
    assert repeated <= kills * page * streams

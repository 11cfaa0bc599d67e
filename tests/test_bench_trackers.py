"""Issue 16's benchmark command still runs every part (tiny sizes); it checks each id was followed to its end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_trackers_benchmark_runs_every_part_on_both_backends() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_trackers.py", "--fanout-ids", "12", "--rounds", "1", "--in-flight", "4",
         "--ids", "20", "--speed", "200", "--startup-rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "[asyncio] 4 in flight" in out and "[trio] 4 in flight" in out
    assert "ratio tidings / bare aiohttp" in out and out.count("ratio tidings (httpcore) / bare httpx") == 2
    assert "[many ids, asyncio] 20 request-status ids" in out and "requests" in out and "peak RSS" in out
    assert "tidings providers" in out and "x import httpx" in out

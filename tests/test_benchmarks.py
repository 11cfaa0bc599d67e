"""The benchmark scripts still run (tiny sizes): they check every contender saw every event exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_feed_benchmark_runs_every_contender_on_both_backends() -> None:
    out = run("benchmarks/bench_feed.py", "--events", "2000", "--page-size", "500", "--repeat", "1", "--context",
              "--trio")
    assert "decoding with msgspec" in out
    for backend in ("[asyncio]", "[trio]"):
        assert backend in out
    assert out.count("ratio (framework / hand-written, + Event per record, median)") == 2


def test_the_feed_benchmark_without_the_fast_decoder() -> None:
    out = run("benchmarks/bench_feed.py", "--events", "1000", "--page-size", "250", "--repeat", "1", "--stdlib-json")
    assert "decoding with json.loads" in out and "ratio (framework / hand-written, median)" in out


def test_the_request_status_benchmark_runs() -> None:
    out = run("plugins/tidings-request-status/benchmarks/bench_10k.py", "--ids", "20", "--speed", "200")
    assert "ids followed         20" in out


def test_the_real_socket_benchmark_runs_every_contender() -> None:
    out = run("benchmarks/bench_real.py", "--events", "1500", "--page-size", "500", "--rounds", "1")
    for contender in ("httpx", "tidings-memory-asyncio", "tidings-sqlite-asyncio", "tidings-memory-trio",
                      "tidings-sqlite-trio", "cli"):
        assert f"\n{contender} " in out
    assert "x httpx wall" in out

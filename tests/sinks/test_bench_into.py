"""The --into benchmark runs end to end at a tiny size (a smoke test: it asserts no speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_bench_into_runs_and_prints_its_ratios() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_into.py"), "--events", "300"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "/dev/null" in done.stdout and "--into sqlite" in done.stdout and "--into duckdb" in done.stdout

"""``tidings follow PROVIDER --into URL [--table NAME]``: the command's errors for bad combinations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tidings

from .conftest import needs_sink_seam

TIDINGS = str(Path(sys.executable).with_name("tidings"))


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TIDINGS, "follow", "financing-activity", "--sandbox", "--until-idle", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "t"], "--table names the table --into fills"),
        (["--into", "sqlite:///e.db", "--checkpoint", "cp.sqlite3"], "drop --checkpoint"),
        (["--into", "mysql://u@h/db"], "not a database URL"),
        (["--into", "sqlite:///e.db", "--table", "Bad-Name"], "lower-case letters"),
    ],
)
def test_bad_combinations_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    done = run(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "tidings-checkpoints.sqlite3").exists()


def test_the_sandbox_feed_into_duckdb_holds_every_event_once(tmp_path: Path) -> None:
    """The issue's done-when command, then the count an analyst runs."""
    needs_sink_seam()
    import duckdb

    first = run(tmp_path, "--into", "duckdb:///events.duckdb", "--quiet")
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""  # the table is the output
    # a new emulator (another port: --rebase) serves the same seeded events again: none goes in twice
    again = run(tmp_path, "--into", "duckdb:///events.duckdb", "--quiet", "--rebase")
    assert again.returncode == 0, again.stderr
    db = duckdb.connect(str(tmp_path / "events.duckdb"))
    try:
        count, distinct = db.execute("select count(*), count(distinct id) from tidings_events").fetchone()
        (raw_ok,) = db.execute("select bool_and(json_valid(raw)) from tidings_events").fetchone()
    finally:
        db.close()
    from tidings_financing_activity.emulator import FinancingActivityEmulator

    expected = FinancingActivityEmulator().scenario().expected_ids  # what --sandbox serves (seeded)
    assert count == distinct == len(expected) and raw_ok
    assert {e.id for e in tidings.table(f"duckdb:///{tmp_path}/events.duckdb")} == expected

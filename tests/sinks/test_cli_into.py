"""``tidings follow PROVIDER --into URL [--table NAME]``: the command's errors for bad combinations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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

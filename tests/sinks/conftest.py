"""Fixtures of the table-store tests: one database URL per kind, a fresh table per test.

PostgreSQL is the server ``.ci/run`` starts (``TIDINGS_TEST_POSTGRES``). In CI (``CI`` set) a missing
server fails the tests that need it; elsewhere they are skipped, saying how to start one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

KINDS = ("sqlite", "duckdb", "postgresql")


def postgres_url() -> str:
    url = os.environ.get("TIDINGS_TEST_POSTGRES")
    if url:
        return url
    message = "no PostgreSQL server: set TIDINGS_TEST_POSTGRES (`source .ci/postgres.sh && postgres_start` starts one)"
    if os.environ.get("CI"):
        pytest.fail(message + " - .ci/run starts one; in CI these tests must not skip")
    pytest.skip(message)


def database_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    if kind == "duckdb":
        return f"duckdb:///{tmp_path}/events.duckdb"
    return postgres_url()


def needs_sink_seam() -> None:
    """The engine commits each page's events through ``EventSink.commit_events`` (the engine branch's side)."""
    import tidings._store

    if not hasattr(tidings._store, "EventSink"):
        pytest.skip("the engine does not commit events through tidings._store.EventSink yet (merge the engine branch)")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(kind: str, tmp_path: Path) -> str:
    return database_url(kind, tmp_path)


@pytest.fixture
def table_name() -> str:
    """A table of this test's own (the PostgreSQL database is shared by every test)."""
    return f"t_{uuid.uuid4().hex[:12]}"

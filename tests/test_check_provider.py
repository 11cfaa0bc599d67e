"""check_provider runs the contract rules without pytest and reports them readably."""

from __future__ import annotations

import pytest
import tidings
from tidings.testing import check_provider

from tiny import TinyCursor, TinyEmulator, TinyFeed


class SkipsLastOfPage(TinyFeed):
    """Drops the last record of every full page: events are lost."""

    @tidings.hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> tidings.Page:
        page = await TinyFeed.fetch_page(self, ctx, cursor)
        records = page.records[:-1] if page.more else page.records
        return tidings.Page(records=records, more=page.more, advance=page.advance)

    @tidings.hookimpl
    def checkpoint(self, cursor: TinyCursor) -> TinyCursor:
        return cursor


def unregister_tiny() -> None:
    entry = tidings.providers().get("tiny-feed")
    if entry is not None:
        tidings.unregister(entry.plugin)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_good_provider_passes_every_rule(backend: str) -> None:
    try:
        report = check_provider(TinyFeed, TinyEmulator, backend=backend)  # type: ignore[arg-type]
    finally:
        unregister_tiny()
    assert report.ok, str(report)
    text = str(report)
    assert text.splitlines()[0].startswith("tiny-feed: ") and "contract rules hold" in text
    assert "ok   full-read-exactly-once" in text and "ok   secrets-never-shown" in text


def test_a_broken_provider_fails_by_rule_and_says_why() -> None:
    try:
        report = check_provider(SkipsLastOfPage, TinyEmulator)
    finally:
        unregister_tiny()
    assert not report.ok
    failed = {r.rule: r.message for r in report.results if not r.passed}
    assert "full-read-exactly-once" in failed and "never delivered" in failed["full-read-exactly-once"]
    assert "FAIL full-read-exactly-once" in str(report)

"""Follow a feed into your own code, resuming where the last run stopped.

Runs against the financing-activity emulator in-process, so it needs no network:
swap the emulator for ``base_url=`` and ``token=`` to follow the real API.

    python examples/follow_feed.py [asyncio|trio]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio
import tidings
from tidings_financing_activity.emulator import FinancingActivityEmulator


async def main(checkpoint: Path) -> None:
    emulator = FinancingActivityEmulator()
    scenario = emulator.scenario(30)
    store = tidings.SQLiteStore(checkpoint)
    options = dict(base_url=emulator.base_url, token=emulator.token, transport=emulator.transport(),
                   page_size=scenario.page_size, after=scenario.after, store=store, until_idle=True, interval=0)

    seen: list[str] = []

    async def handle(event: tidings.Event) -> None:  # sync or async, as you like
        seen.append(event.id)
        if len(seen) == 10:
            watch.stop()  # stop after this event: its position is saved

    watch = tidings.Watch("financing-activity", **options)
    await watch.run(handle)
    first = len(seen)
    await tidings.Watch("financing-activity", **options).run(handle)  # resumes after the tenth
    await store.aclose()
    assert len(seen) == len(set(seen)) == len(emulator.expected_ids(scenario)), "each event exactly once"
    print(f"first run: {first} events, second run: {len(seen) - first} more, none twice")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        anyio.run(main, Path(folder) / "positions.sqlite3", backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")

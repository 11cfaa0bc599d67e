"""Follow several trackers at once, with one limit on requests per host, and collect their events.

Runs the request-status and bank-sync emulators in-process (no network).

    python examples/track_many.py
"""

from __future__ import annotations

from collections import Counter

import anyio
import tidings
from tidings.sandbox import Clock
from tidings_bank_sync.emulator import BankSyncEmulator
from tidings_request_status.emulator import RequestStatusEmulator


def watch_of(provider: str, emulator: tidings.sandbox.Emulator) -> tidings.Watch:
    emulator.clock = Clock(speed=20)  # results arrive 20 times faster than real time
    scenario = emulator.scenario(20)
    return tidings.Watch(provider, base_url=emulator.base_url, token=emulator.token, transport=emulator.transport(),
                         params=scenario.params, interval=0.05, max_interval=0.2)


async def main() -> None:
    watches = [watch_of("request-status", RequestStatusEmulator()), watch_of("bank-sync", BankSyncEmulator())]
    by_provider: Counter[str] = Counter()
    finals = []

    def handle(event: tidings.Event) -> None:
        by_provider[event.provider] += 1
        if event.terminal:
            finals.append(f"{event.provider}: {event.subject} {event.status}")

    stats = await tidings.follow_all(watches, handle, max_per_host=8)
    assert all(s.streams_ended == s.streams for s in stats), "every tracker ran to its end"
    print(dict(by_provider))
    print("\n".join(finals[:5]), f"\n... {len(finals)} subjects ended")


if __name__ == "__main__":
    anyio.run(main)

"""Follow 10,000 request ids at once against the in-process emulator; print wall time, requests, memory.

Each id has 2 to 9 inner requests (pages of 4, so most ids span two or three
pages) finishing between 1 and 60 emulated seconds (the clock runs at 10x, so
about 6 real seconds). One watch, one process, at most ``--in-flight`` requests
at once (the Watch's ``max_per_host`` limiter); an id still ``OPEN`` is polled
with the engine's doubling backoff (``--interval`` to ``--max-interval``).

    python plugins/tidings-request-status/benchmarks/bench_10k.py [--ids 10000] [--tracemalloc]

A benchmark script, not a test. A progress line (done / open / failed ids)
goes to stderr every second.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections import Counter

import anyio
import tidings
from tidings.sandbox import Clock
from tidings_request_status import FINAL_STATUSES, RequestStatusEmulator


async def main(args: argparse.Namespace) -> None:
    emulator = RequestStatusEmulator(seed=1, clock=Clock(speed=args.speed), min_open_polls=1)
    inner_of: dict[str, str] = {}  # inner request id -> outer id
    ids = []
    for _ in range(args.ids):
        outer = emulator.add_call(emulator.random.randint(2, 9), due=(1.0, 60.0))
        ids.append(outer)
        for inner in emulator.calls[outer]:
            inner_of[inner.request_id] = outer
    inner_total = len(inner_of)
    watch = tidings.Watch(
        "request-status",
        base_url=emulator.base_url,
        token=emulator.token,
        transport=emulator.transport(),
        params={"request_id": ids},
        page_size=4,
        interval=args.interval,
        max_interval=args.max_interval,
        max_per_host=args.in_flight,
    )
    failed: set[str] = set()
    statuses: Counter[str] = Counter()

    def handle(event: tidings.Event) -> None:
        statuses[event.type] += 1
        if event.terminal and event.status != "SUCCESS":
            failed.add(inner_of.get(event.subject or "", event.subject or ""))

    async def progress() -> None:
        while True:
            await anyio.sleep(1.0)
            done = watch.stats.streams_ended
            print(
                f"\r{done:>6} done  {watch.stats.streams - done:>6} open  {len(failed):>6} failed  "
                f"{watch.stats.delivered:>7} events",
                end="",
                file=sys.stderr,
                flush=True,
            )

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(progress)
        stats = await watch.run(handle)
        tg.cancel_scope.cancel()
    wall = time.perf_counter() - began
    print(file=sys.stderr)

    assert stats.streams_ended == stats.streams == args.ids, stats
    finals = sum(n for t, n in statuses.items() if t.removeprefix("request.").upper() in FINAL_STATUSES)
    assert finals == inner_total, (finals, inner_total)
    sent = watch.http.requests_sent if watch.http is not None else len(emulator.requests)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"ids followed         {args.ids}")
    print(f"inner requests       {inner_total} (events delivered {stats.delivered}: {dict(statuses)})")
    print(f"wall time            {wall:.1f} s (last result due at ~{60 / args.speed:.0f} s)")
    print(f"requests sent        {sent} ({sent / args.ids:.1f} per id, {stats.retries} retries)")
    print(f"in flight at most    {args.in_flight}")
    print(f"peak RSS             {rss_mib:.0f} MiB (whole process, emulator included)")
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        print(f"peak traced          {peak / 2**20:.0f} MiB (tracemalloc)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=10.0, help="emulated seconds per real second")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--max-interval", type=float, default=4.0)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    options = parser.parse_args()
    if options.tracemalloc:
        tracemalloc.start()
    anyio.run(main, options, backend=options.backend)

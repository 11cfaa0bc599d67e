"""Events/s of a tidings watch against a hand-written httpx loop over the same in-process app.

Run from the repository root::

    .venv/bin/python benchmarks/bench_feed.py               # asyncio, 100,000 events, pages of 1,000
    .venv/bin/python benchmarks/bench_feed.py --trio        # also on trio
    .venv/bin/python benchmarks/bench_feed.py --profile     # one framework run under cProfile

The server is a Starlette app serving ``GET /v1/activity?after=&limit=&offset=``
over events shaped like the financing-activity records (ordered by
``event_date_time``, ties included, ``after`` inclusive). Every page body is
serialised before timing starts, so the server costs the same for both
contenders. See ``benchmarks/README.md`` for what is measured.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import gc
import io
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import tidings
import tidings._http
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tidings import Event, Page, ProviderInfo, hookimpl

try:
    from msgspec.json import decode as msgspec_loads
except ImportError:  # the `fast` extra is missing
    msgspec_loads = None

PROVIDER = "bench-activity"
BASE_URL = "https://bench.test/v1"
T0 = datetime(2021, 3, 29, 11, 1, 43, tzinfo=timezone.utc)
START = "2021-03-29T00:00:00.000Z"  # before every event: the `after` of the first poll, for both contenders
SERVICES = ("FING_duplicate_financing_check", "DDOC_duplicate_document_check")
FINANCING_STATUSES = ("REGU", "REDU", "PNDG", "DFIN", "FNCD", "CANC")


def format_after(when: datetime) -> str:
    """``2021-11-18T11:08:23.003Z`` (the seed's form: UTC, milliseconds)."""
    when = when.astimezone(timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


# -- the data set and the server ----------------------------------------------


def make_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Financing-activity events, ``event_date_time`` ascending, three events per millisecond stamp."""
    rng = random.Random(seed)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    events = []
    for i in range(count):
        when = T0 + timedelta(milliseconds=137 * (i // 3))
        details: list[dict[str, Any]] = [{"service_name": SERVICES[0], "status": rng.choice(FINANCING_STATUSES)}]
        if i % 2:
            details.append(
                {"service_name": SERVICES[1], "registered_document_identification": uid(), "status": "EXCT"}
            )
        events.append(
            {
                "event_identification": uid(),
                "event_date_time": format_after(when),
                "pool_identification": f"POOL-{i % 97:04d}",
                "submitter_batch_identification": f"BATCH-{i // 50:05d}",
                "batch_identification": uid(),
                "submitter_data_set_identification": f"FIN-{i:06d}",
                "data_set_identification": uid(),
                "request_identifications": [uid() for _ in range(1 + i % 2)],
                "event_details": details,
            }
        )
    return events


class ActivityServer:
    """Answers ``GET /v1/activity`` from pre-serialised page bodies.

    Each event is serialised once; a page body is built on first request of a
    ``(first index, limit)`` slice and cached, and :meth:`warm` builds the pages
    both contenders ask for before any timing, so a timed request is a dict lookup.
    """

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.times = [e["event_date_time"] for e in events]  # same format throughout: text order is time order
        self.encoded = [json.dumps(e, separators=(",", ":")).encode() for e in events]
        # the dicts are not kept: 100,000 of them (millions of objects) would make every
        # full garbage collection during the timed runs walk a heap no real client has
        self.pages: dict[tuple[int, int], bytes] = {}
        self.requests = 0

    def body(self, after: str | None, offset: int, limit: int) -> bytes:
        first = bisect.bisect_left(self.times, after) if after else 0  # `after` is inclusive
        start = first + offset
        key = (start, limit)
        page = self.pages.get(key)
        if page is None:
            page = b'{"events":[' + b",".join(self.encoded[start : start + limit]) + b"]}"
            self.pages[key] = page
        return page

    def warm(self, page_size: int) -> None:
        for offset in range(0, len(self.encoded) + 1, page_size):
            self.body(START, offset, page_size)

    def app(self) -> Starlette:
        async def activity(request: Request) -> Response:
            self.requests += 1
            q = request.query_params
            try:
                offset = int(q.get("offset", "0"))
                limit = int(q.get("limit", "100"))
            except ValueError:
                return Response(b'{"error":"bad offset or limit"}', status_code=400, media_type="application/json")
            return Response(self.body(q.get("after"), offset, limit), media_type="application/json")

        return Starlette(routes=[Route("/v1/activity", activity)])


# -- the provider plugin -----------------------------------------------------


@attrs.frozen
class BenchCursor:
    newest: datetime | None = None
    poll_after: datetime | None = None
    offset: int = 0


@attrs.frozen(slots=True)
class EventDetail:
    service_name: str
    status: str | None = None
    registered_document_identification: str | None = None


@attrs.frozen(slots=True)
class ActivityRecord:
    """The typed record of one event (built by ``Event.record`` on first access)."""

    event_identification: str
    event_date_time: datetime
    pool_identification: str | None = None
    submitter_batch_identification: str | None = None
    batch_identification: str | None = None
    submitter_data_set_identification: str | None = None
    data_set_identification: str | None = None
    request_identifications: tuple[str, ...] = ()
    event_details: tuple[EventDetail, ...] = ()


class BenchActivity:
    """A feed provider like tests/tiny.py's TinyFeed: a fixed ``after`` per poll, offset paging within it."""

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=PROVIDER,
            kind="feed",
            description="benchmark copy of the financing-activity feed",
            cursor_type=BenchCursor,
            default_base_url=BASE_URL,
        )

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: BenchCursor) -> Page:
        if cursor.offset == 0:
            after = cursor.newest - timedelta(seconds=ctx.overlap) if cursor.newest else ctx.after
        else:
            after = cursor.poll_after
        limit = ctx.page_size or 100
        params: dict[str, Any] = {"after": format_after(after) if after else START, "limit": limit,
                                  "offset": cursor.offset}
        body = await ctx.http.get_json("activity", params=params)
        records = body["events"]
        full = len(records) == limit
        offset = cursor.offset + len(records) if full else 0
        return Page(records=records, more=full, advance=lambda c: attrs.evolve(c, poll_after=after, offset=offset))

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> Event:
        # Read what the envelope needs and let a missing or malformed field raise (EAFP): on a feed whose
        # records are almost always well-formed this is cheaper than checking first with tidings.require.
        try:
            event_id = record["event_identification"]
            last = record["event_details"][-1]
            kind = last["service_name"]
            when = tidings.parse_time(record["event_date_time"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise tidings.ParseError(
                f"unreadable record: {type(exc).__name__} {exc}", provider=PROVIDER,
                record_id=str(record.get("event_identification")) if isinstance(record, dict) else None,
            ) from None
        if event_id.__class__ is not str or kind.__class__ is not str:
            raise tidings.ParseError("the id and service_name must be text", provider=PROVIDER,
                                     record_id=str(event_id))
        return Event.make(  # Event(...) with keywords costs a dict per call; Event.make does not
            provider=PROVIDER,
            id=event_id,
            subject=record.get("data_set_identification"),
            type=kind,
            status=last.get("status"),
            occurred_at=when,
            raw=record,
            record_type=ActivityRecord,
        )

    @hookimpl
    def checkpoint(self, cursor: BenchCursor, event: Event) -> BenchCursor:
        if cursor.newest is None or event.occurred_at > cursor.newest:
            # the constructor, not attrs.evolve (generic, several times slower): this runs per event
            return BenchCursor(newest=event.occurred_at, poll_after=cursor.poll_after, offset=cursor.offset)
        return cursor


# -- the contenders --------------------------------------------------------


class Tally:
    """What each handler does: read the envelope fields (and sometimes the typed record)."""

    def __init__(self, record_every: int = 0) -> None:
        self.count = 0
        self.kinds = 0
        self.typed = 0
        self.record_every = record_every

    def handler(self, event: Event) -> None:
        self.count += 1
        if event.id and event.type == SERVICES[1]:
            self.kinds += 1
        if self.record_every and self.count % self.record_every == 0:
            record = event.record
            if record.event_details:
                self.typed += 1


async def run_framework(
    app: Starlette, page_size: int, *, store: tidings.CheckpointStore | None = None, record_every: int = 0
) -> tuple[int, float]:
    tally = Tally(record_every)
    started = time.perf_counter()
    watch = tidings.Watch(
        PROVIDER,
        store=store if store is not None else tidings.MemoryStore(),
        after=START,
        page_size=page_size,
        interval=0,
        until_idle=True,
        transport=httpx.ASGITransport(app),
    )
    stats = await watch.run(tally.handler)
    elapsed = time.perf_counter() - started
    if stats.delivered != tally.count:
        raise AssertionError(f"delivered {stats.delivered} but the handler saw {tally.count}")
    if record_every and tally.typed != tally.count // record_every:
        raise AssertionError("typed records missing")
    return tally.count, elapsed


async def run_handwritten(
    app: Starlette, page_size: int, *, loads: Callable[[bytes], Any] = json.loads, events: bool = False
) -> tuple[int, float]:
    """The loop by hand. ``loads``: the JSON decoder. ``events``: also build a ``tidings.Event`` per
    record (as a plugin's ``parse_event`` would: required fields checked, time parsed) and hand it
    to the same handler the framework calls, which is the least any loop delivering typed events does.
    """
    started = time.perf_counter()
    tally = Tally()
    plugin = BenchActivity()
    seen: set[str] = set()
    count = kinds = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url=BASE_URL) as client:
        offset = 0
        while True:
            response = await client.get(
                "/activity", params={"after": START, "limit": page_size, "offset": offset}
            )
            response.raise_for_status()
            records = loads(response.content)["events"]
            for record in records:
                event_id = record["event_identification"]
                if event_id in seen:
                    continue
                seen.add(event_id)
                count += 1
                if events:
                    tally.handler(plugin.parse_event(record))
                elif record["event_details"][-1]["service_name"] == SERVICES[1]:
                    kinds += 1
            if len(records) < page_size:
                break
            offset += len(records)
    return count, time.perf_counter() - started


# -- the driver --------------------------------------------------------------


def timed(backend: str, func: Callable[[], Awaitable[tuple[int, float]]], expected: int) -> tuple[float, float]:
    """One run: (events per wall-clock second, events per CPU second of this process)."""
    gc.collect()
    cpu = time.process_time()
    count, elapsed = anyio.run(func, backend=backend)
    cpu = time.process_time() - cpu
    if count != expected:
        raise AssertionError(f"expected {expected} events, got {count}")
    return count / elapsed, count / cpu


def report(name: str, rates: list[float]) -> None:
    print(f"  {name:<36} best {max(rates):>10,.0f} ev/s   median {statistics.median(rates):>10,.0f} ev/s")


def bench_backend(backend: str, app: Starlette, args: argparse.Namespace) -> None:
    n, size = args.events, args.page_size
    contenders: dict[str, Callable[[], Awaitable[tuple[int, float]]]] = {
        "hand-written httpx loop": lambda: run_handwritten(app, size),
        "tidings watch (envelope only)": lambda: run_framework(app, size),
        "tidings watch (+ .record every 100)": lambda: run_framework(app, size, record_every=100),
    }
    if args.context:
        contenders["hand-written, msgspec decoding"] = lambda: run_handwritten(app, size, loads=msgspec_loads)
        contenders["hand-written, + Event per record"] = lambda: run_handwritten(
            app, size, loads=msgspec_loads, events=True
        )
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for func in contenders.values():  # warm-up: imports, pluggy caches, cattrs structure functions
        timed(backend, func, n)
    for _ in range(args.repeat):
        for name, func in contenders.items():  # alternate, so drift hits every contender alike
            wall_rate, cpu_rate = timed(backend, func, n)
            rates[name].append(wall_rate)
            cpu[name].append(cpu_rate)
    print(f"\n[{backend}] {n:,} events in pages of {size:,}, {args.repeat} runs each (wall clock)")
    for name, values in rates.items():
        report(name, values)
    base = statistics.median(rates["hand-written httpx loop"])
    plain = statistics.median(rates["tidings watch (envelope only)"])
    typed = statistics.median(rates["tidings watch (+ .record every 100)"])
    print(f"  ratio (framework / hand-written, median): {plain / base:.2f}")
    print(f"  ratio (framework + .record every 100 / hand-written, median): {typed / base:.2f}")
    best = max(rates["tidings watch (envelope only)"]) / max(rates["hand-written httpx loop"])
    print(f"  ratio (framework / hand-written, best): {best:.2f}")
    if args.context:
        for name in ("hand-written, msgspec decoding", "hand-written, + Event per record"):
            print(f"  ratio (framework / {name}, median): {plain / statistics.median(rates[name]):.2f}")
    cpu_base = statistics.median(cpu["hand-written httpx loop"])
    print(
        "  same ratios by process CPU time (steadier on a busy machine): "
        f"{statistics.median(cpu['tidings watch (envelope only)']) / cpu_base:.2f}, "
        f"{statistics.median(cpu['tidings watch (+ .record every 100)']) / cpu_base:.2f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        store = tidings.SQLiteStore(Path(tmp) / "bench.sqlite3")
        try:
            rate, _ = timed(backend, lambda: run_framework(app, size, store=store), n)
        finally:
            anyio.run(store.aclose, backend=backend)
    print(f"  tidings watch with SQLiteStore (one run): {rate:,.0f} ev/s  ({rate / base:.2f} of hand-written median)")


def profile(app: Starlette, args: argparse.Namespace) -> None:
    timed("asyncio", lambda: run_framework(app, args.page_size), args.events)  # warm-up
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    count, elapsed = anyio.run(lambda: run_framework(app, args.page_size))
    profiler.disable()
    print(f"\n[profile] tidings watch, {count:,} events in {elapsed:.2f}s under cProfile (inflated)\n")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events served (default 100000)")
    parser.add_argument("--page-size", type=int, default=1000, help="events per page (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per contender (default 5)")
    parser.add_argument("--trio", action="store_true", help="also run every contender on trio")
    parser.add_argument("--profile", action="store_true", help="run the framework once under cProfile instead")
    parser.add_argument(
        "--context", action="store_true",
        help="also time hand-written loops that decode with msgspec, and that build a tidings.Event per record",
    )
    parser.add_argument(
        "--stdlib-json", action="store_true", help="the framework decodes with json.loads (as without the fast extra)"
    )
    args = parser.parse_args(argv)
    if args.stdlib_json:
        tidings._http._fast_loads = None
    elif tidings._http._fast_loads is None:
        print("note: msgspec is not installed (pip install 'tidings[fast]'): the framework decodes with json.loads")
    if args.context and msgspec_loads is None:
        parser.error("--context needs msgspec: pip install 'tidings[fast]'")
    if args.events < 1 or args.page_size < 1 or args.repeat < 1:
        parser.error("--events, --page-size and --repeat must be positive")

    made = time.perf_counter()
    server = ActivityServer(make_events(args.events))
    server.warm(args.page_size)
    app = server.app()
    gc.collect()
    gc.freeze()  # the server's pre-serialised pages are not the clients' garbage to scan
    tidings.register(BenchActivity, name=PROVIDER)
    decoder = "msgspec" if tidings._http._fast_loads is not None else "json.loads"
    print(
        f"python {sys.version.split()[0]}, httpx {httpx.__version__}, tidings {tidings.__version__} "
        f"(decoding with {decoder}); "
        f"{args.events:,} events ({sum(map(len, server.encoded)) / args.events:.0f} bytes each as JSON), "
        f"set up in {time.perf_counter() - made:.1f}s"
    )
    try:
        if args.profile:
            profile(app, args)
        else:
            bench_backend("asyncio", app, args)
            if args.trio:
                bench_backend("trio", app, args)
    finally:
        tidings.unregister(PROVIDER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

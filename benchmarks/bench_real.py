"""The shipped financing-activity plugin over a real loopback socket, against a hand-written httpx loop.

Run from the repository root::

    .venv/bin/python benchmarks/bench_real.py                      # 100,000 events, pages of 1,000, 3 rounds
    .venv/bin/python benchmarks/bench_real.py --events 2000 --page-size 500 --rounds 1   # a smoke run

A uvicorn server (in this process, on 127.0.0.1) serves ``GET /v1/activity`` from page bodies
serialised before timing (``bench_feed.ActivityServer``). Each client runs in a fresh process;
the rounds interleave the contenders; the medians of wall and CPU time are printed with the ratio
to the hand-written loop. Contenders: the hand-written ``httpx.AsyncClient`` loop (``r.json()``,
a set of ids); ``tidings.Watch`` with the shipped plugin (MemoryStore and SQLiteStore, asyncio and
trio, ``interval=0``, ``until_idle``); ``tidings follow … > /dev/null``. Peers from other
libraries (dlt, singer-sdk) are not installed in this environment and are not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = "2021-03-29T00:00:00.000Z"


def child(kind: str, url: str, events: int, page_size: int) -> None:
    """One contender's run; prints the events it saw (each once) as JSON."""
    import anyio

    if kind == "httpx":
        import httpx

        async def loop() -> int:
            seen: set[str] = set()
            async with httpx.AsyncClient(base_url=url) as client:
                offset = 0
                while True:
                    r = await client.get("/activity", params={"after": START, "limit": page_size, "offset": offset})
                    page = r.json()["events"]
                    if not page:
                        return len(seen)
                    for e in page:
                        seen.add(e["event_identification"])
                    offset += len(page)

        n = anyio.run(loop)
    else:
        import tidings

        store_kind, backend = kind.split("-")[1:]
        with tempfile.TemporaryDirectory() as tmp:
            store = tidings.SQLiteStore(Path(tmp) / "c.db") if store_kind == "sqlite" else tidings.MemoryStore()
            watch = tidings.Watch("financing-activity", base_url=url, store=store, after=START, page_size=page_size,
                                  interval=0, until_idle=True)
            ids: set[str] = set()
            anyio.run(watch.run, lambda e: ids.add(e.id), backend=backend)
            n = len(ids)
    print(json.dumps({"events": n}))


def serve(events: int, page_size: int) -> tuple[str, object]:
    sys.path.insert(0, str(HERE))
    import uvicorn
    from bench_feed import ActivityServer, make_events

    server = ActivityServer(make_events(events))
    server.warm(page_size)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(server.app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    running = uvicorn.Server(config)
    threading.Thread(target=running.run, daemon=True).start()
    while not running.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}/v1", running


def timed(cmd: list[str], stdout: int | None = subprocess.PIPE) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout or ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.events, args.page_size)
        return 0
    url, _server = serve(args.events, args.page_size)
    kinds = ["httpx", "tidings-memory-asyncio", "tidings-sqlite-asyncio", "tidings-memory-trio",
             "tidings-sqlite-trio", "cli"]
    tidings_cmd = str(Path(sys.executable).with_name("tidings"))
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as devnull:
        for r in range(args.rounds):
            for kind in kinds:
                if kind == "cli":
                    cmd = [tidings_cmd, "follow", "financing-activity", "--base-url", url, "--after", START,
                           "--page-size", str(args.page_size), "--interval", "0", "--until-idle", "--quiet",
                           "--checkpoint", str(Path(tmp) / f"cli{r}.db")]
                    wall, cpu, _ = timed(cmd, stdout=devnull.fileno())
                else:
                    cmd = [sys.executable, __file__, "--child", kind, "--url", url, "--events", str(args.events),
                           "--page-size", str(args.page_size)]
                    wall, cpu, out = timed(cmd)
                    seen = json.loads(out.strip().splitlines()[-1])["events"]
                    if seen != args.events:
                        raise SystemExit(f"{kind} saw {seen} events, not {args.events}")
                results[kind].append((wall, cpu))
    print(f"{args.events} events in pages of {args.page_size}, {args.rounds} interleaved rounds, "
          f"fresh process per client (start-up included), load {os.getloadavg()[0]:.2f}, "
          f"Python {sys.version.split()[0]}")
    base_wall = statistics.median(w for w, _ in results["httpx"])
    base_cpu = statistics.median(c for _, c in results["httpx"])
    print(f"{'contender':28} {'events/s wall':>14} {'x httpx wall':>13} {'events/s cpu':>13} {'x httpx cpu':>12}")
    for kind in kinds:
        wall = statistics.median(w for w, _ in results[kind])
        cpu = statistics.median(c for _, c in results[kind])
        print(f"{kind:28} {args.events / wall:14,.0f} {base_wall / wall:13.2f} {args.events / cpu:13,.0f} "
              f"{base_cpu / cpu:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

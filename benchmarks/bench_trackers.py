"""Issue 16's benchmarks in one command: fan-out, many ids, start-up (figures and ratios).

Run from the repository root::

    .venv/bin/python benchmarks/bench_trackers.py                     # all three, ~3 minutes on 2 cores
    .venv/bin/python benchmarks/bench_trackers.py --only fanout       # or manyids, startup
    .venv/bin/python benchmarks/bench_trackers.py --ids 100000 --only manyids

1. Fan-out (``_fanout.py``): status requests/s of a tidings watch against bare aiohttp and bare
   httpx loops, 20 and 100 in flight, asyncio and trio, a uvicorn server in another process.
2. Many ids: ``--ids`` request-status ids against the emulator in another process: wall time
   against the timing floor the emulator's due times allow, requests against the least a client
   can send, peak RSS of this (client) process, and tracemalloc's peak with ``--tracemalloc``.
3. Start-up: whole-process medians, interleaved, of ``tidings providers``, ``tidings --help`` and
   ``import tidings`` against ``python -c "import httpx"``.

Benchmarks, not tests: they assert only that every id was followed to its end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fanout import run as run_fanout
from _fanout import server


def startup(rounds: int, out: callable) -> dict[str, float]:  # type: ignore[valid-type]
    exe = sys.executable
    tidings_cli = str(Path(exe).with_name("tidings"))
    commands = {
        'python -c "import httpx"': [exe, "-c", "import httpx"],
        'python -c "import tidings"': [exe, "-c", "import tidings"],
        "tidings --help": [tidings_cli, "--help"],
        "tidings providers": [tidings_cli, "providers"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds + 1):  # interleaved; the first round warms the file cache and is dropped
        for name, command in commands.items():
            began = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - began)
    base = statistics.median(times['python -c "import httpx"'][1:])
    medians = {}
    out(f"[start-up] whole-process medians of {rounds} interleaved rounds:")
    for name, spent in times.items():
        medians[name] = statistics.median(spent[1:])
        out(f"    {name:<28} {medians[name] * 1000:>6.0f} ms  {medians[name] / base:.2f}x import httpx"
            + ("  (target <= 1.5)" if name == "tidings providers" else ""))
    return medians


async def _many(base: str, in_flight: int, interval: float, max_interval: float, backend: str) -> dict:
    import tidings

    async with httpx.AsyncClient() as client:
        plan = (await client.get(f"{base}/bench/plan")).json()
    ids = plan["ids"]
    watch = tidings.Watch("request-status", base_url=base, token=plan["token"], params={"request_id": ids},
                          page_size=4, interval=interval, max_interval=max_interval, max_per_host=in_flight)
    finals = 0

    def handle(event: tidings.Event) -> None:
        nonlocal finals
        finals += event.terminal

    began = time.perf_counter()
    stats = await watch.run(handle)
    wall = time.perf_counter() - began
    async with httpx.AsyncClient() as client:
        after = (await client.get(f"{base}/bench/plan")).json()
    assert stats.streams_ended == len(ids) and finals == plan["inner"], (stats, finals, plan["inner"])
    floor = max(plan["floor"] - plan["elapsed"], 0.001)
    return {"ids": len(ids), "wall": wall, "floor": floor, "requests": after["reads"] - plan["reads"],
            "min_requests": plan["min_requests"], "backend": backend}


def many_ids(ids: int, speed: float, in_flight: int, interval: float, max_interval: float, backend: str,
             trace: bool, out: callable) -> dict:  # type: ignore[valid-type]
    with server("emulator", "--ids", str(ids), "--speed", str(speed)) as base:
        if trace:
            tracemalloc.start()
        figures = anyio.run(_many, base, in_flight, interval, max_interval, backend, backend=backend)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    targets = (150, 1.5) if ids <= 10_000 else (1024, 2.0)
    out(f"[many ids, {backend}] {ids} request-status ids, emulator in another process at {speed:g}x, "
        f"{in_flight} in flight, interval {interval:g}..{max_interval:g} s:")
    out(f"    wall {figures['wall']:.1f} s against a timing floor of {figures['floor']:.1f} s: "
        f"{figures['wall'] / figures['floor']:.2f}x (target <= {targets[1]})")
    out(f"    requests {figures['requests']} against at least {figures['min_requests']}: "
        f"{figures['requests'] / figures['min_requests']:.2f}x (target <= 1.2)")
    out(f"    peak RSS {rss:.0f} MiB, client process only (target <= {targets[0]} MB)")
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        out(f"    tracemalloc peak {peak / 2**20:.0f} MiB: {peak / ids / 1024:.1f} KiB per id")
    figures["rss_mib"] = rss
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=["fanout", "manyids", "startup"],
                        default=["fanout", "manyids", "startup"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fanout-ids", type=int, default=300)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--backend", nargs="+", default=["asyncio", "trio"])
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=10.0, help="emulated seconds per real second")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--startup-rounds", type=int, default=7)
    args = parser.parse_args()
    from importlib.metadata import version

    print(f"python {sys.version.split()[0]}, " + ", ".join(f"{p} {version(p)}" for p in ("httpx", "aiohttp", "anyio")))
    if "fanout" in args.only:
        run_fanout(args.backend, args.in_flight, args.fanout_ids, args.rounds, print)
    if "manyids" in args.only:
        many_ids(args.ids, args.speed, 32, 0.5, 4.0, args.backend[0], args.tracemalloc, print)
    if "startup" in args.only:
        startup(args.startup_rounds, print)


if __name__ == "__main__":
    main()

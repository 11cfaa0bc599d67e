"""Benchmark 1, fan-out: status requests/s of tidings against bare aiohttp and bare httpx loops.

A loopback uvicorn server in another process (``_status_server.py fanout``) answers
``GET /api/v3/global/call/{id}``: ``OPEN`` on an id's first three reads, ``SUCCESS`` on the
fourth. Every contender follows ``--ids`` fresh ids until each is ``SUCCESS`` (exactly four
requests an id) with ``in_flight`` requests at once:

* bare aiohttp: ``aiohttp.ClientSession()`` (default pool), ``in_flight`` workers, ``json.loads``;
* bare httpx: ``httpx.AsyncClient()`` (default pool), the same loop;
* tidings: a ``Watch`` of the request-status plugin over the ids, ``interval=0``,
  ``max_per_host=in_flight``, on the transport :func:`tidings._transport.default_transport`
  picks (and, for the record, on httpcore too).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).resolve().parent
STATUS_PATH = "/api/v3/global/call/"


@contextlib.contextmanager
def server(*args: str) -> Iterator[str]:
    """Run ``_status_server.py`` with ``args`` in another process; yield its base URL."""
    proc = subprocess.Popen([sys.executable, str(HERE / "_status_server.py"), *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the benchmark server did not start ({url!r})")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def _workers(ids: list[str], in_flight: int, get: Callable[[str], Awaitable[str]]) -> int:
    queue = list(reversed(ids))
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while queue:
            request_id = queue.pop()
            while True:
                sent += 1
                if await get(request_id) == "SUCCESS":
                    break

    async with anyio.create_task_group() as tg:
        for _ in range(in_flight):
            tg.start_soon(worker)
    return sent


async def bare_aiohttp(base: str, ids: list[str], in_flight: int) -> int:
    import aiohttp

    async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as session:

        async def get(request_id: str) -> str:
            async with session.get(f"{base}{STATUS_PATH}{request_id}", params={"page": "0", "size": "100"}) as r:
                r.raise_for_status()
                return json.loads(await r.read())["content"][0]["status"]  # type: ignore[no-any-return]

        return await _workers(ids, in_flight, get)


async def bare_httpx(base: str, ids: list[str], in_flight: int) -> int:
    async with httpx.AsyncClient(headers={"Authorization": "Bearer t"}) as client:

        async def get(request_id: str) -> str:
            r = await client.get(f"{base}{STATUS_PATH}{request_id}", params={"page": 0, "size": 100})
            r.raise_for_status()
            return json.loads(r.content)["content"][0]["status"]  # type: ignore[no-any-return]

        return await _workers(ids, in_flight, get)


def tidings_on(choice: str) -> Callable[[str, list[str], int], Awaitable[int]]:
    async def run(base: str, ids: list[str], in_flight: int) -> int:
        import tidings
        from tidings._transport import default_transport

        watch = tidings.Watch("request-status", base_url=base, token="t", params={"request_id": ids},
                              transport=default_transport(base, in_flight, choice), interval=0, max_interval=0,
                              max_per_host=in_flight)
        finals = 0

        def handle(event: tidings.Event) -> None:
            nonlocal finals
            finals += event.status == "SUCCESS"

        stats = await watch.run(handle)
        assert stats.streams_ended == len(ids) and finals == len(ids), (stats, finals)
        return 4 * len(ids)

    return run


Contender = Callable[[str, list[str], int], Awaitable[int]]


def contenders(backend: str) -> dict[str, Contender]:
    if backend == "asyncio":
        return {"bare aiohttp": bare_aiohttp, "bare httpx": bare_httpx, "tidings (aiohttp)": tidings_on("aiohttp"),
                "tidings (httpcore)": tidings_on("httpcore")}
    return {"bare httpx": bare_httpx, "tidings (httpcore)": tidings_on("httpcore")}


def run(backends: list[str], in_flights: list[int], ids: int, rounds: int, out: Callable[[str], None]) -> dict:
    """Run every contender ``rounds`` times, interleaved; print medians and ratios; return the figures."""
    figures: dict[str, dict[str, float]] = {}
    with server("fanout", "--reads", "4") as base:
        serial = 0
        for backend in backends:
            for in_flight in in_flights:
                rates: dict[str, list[float]] = {name: [] for name in contenders(backend)}
                for _ in range(rounds + 1):  # the first round warms up and is not counted
                    for name, contender in contenders(backend).items():
                        serial += 1
                        batch = [f"r{serial}-{i}" for i in range(ids)]
                        began = time.perf_counter()
                        sent = anyio.run(contender, base, batch, in_flight, backend=backend)
                        rates[name].append(sent / (time.perf_counter() - began))
                medians = {name: statistics.median(r[1:]) for name, r in rates.items()}
                key = f"{backend}/{in_flight}"
                figures[key] = medians
                out(f"[{backend}] {in_flight} in flight, {ids} ids x 4 reads, median of {rounds} rounds:")
                for name, rate in medians.items():
                    out(f"    {name:<20} {rate:>8.0f} requests/s")
                if backend == "asyncio":
                    ratio = medians["tidings (aiohttp)"] / medians["bare aiohttp"]
                    out(f"    ratio tidings / bare aiohttp   {ratio:.2f}  (target >= 0.8)")
                ratio = medians["tidings (httpcore)"] / medians["bare httpx"]
                out(f"    ratio tidings (httpcore) / bare httpx   {ratio:.2f}" + ("  (target >= 2)" if backend == "trio"
                                                                                  else ""))
    return figures


def main(argv: Any = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="fan-out requests/s")
    parser.add_argument("--ids", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--backend", nargs="+", default=["asyncio", "trio"])
    args = parser.parse_args(argv)
    run(args.backend, args.in_flight, args.ids, args.rounds, print)


if __name__ == "__main__":
    main()

"""Loopback servers for ``bench_trackers.py``, each run in a process of its own (uvicorn, one worker).

    python benchmarks/_status_server.py fanout [--reads 4]
    python benchmarks/_status_server.py emulator --ids 10000 [--speed 10] [--seed 1]

``fanout``: ``GET /api/v3/global/call/{id}`` answers one inner request, ``OPEN`` on the first
``reads - 1`` reads of an id and ``SUCCESS`` from then on (a raw ASGI app: the server costs
little next to the clients it serves). ``emulator``: the request-status emulator
(``RequestStatusEmulator``) with ``--ids`` calls of 2 to 9 inner requests due between 1 and 60
emulated seconds; ``GET /bench/plan`` returns the ids, the inner request count, the minimum
number of requests, the timing floor, the real seconds since the clock started and the status
reads so far. Either prints its base URL on stdout once it listens.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any


def fanout_app(reads: int) -> Any:
    seen: dict[str, int] = {}
    head = [(b"content-type", b"application/json")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request_id = scope["path"].rsplit("/", 1)[-1]
        count = seen.get(request_id, 0) + 1
        seen[request_id] = count
        status = "SUCCESS" if count >= reads else "OPEN"
        content = [{"requestId": request_id, "status": status}]
        body = json.dumps({"errorCode": "", "errorMessage": "", "content": content,
                           "pageable": {"page": 0, "size": 100, "totalPages": 1, "totalElements": 1}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*head, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


def emulator_app(ids: int, speed: float, seed: int, page_size: int) -> Any:
    from tidings.sandbox import Clock
    from tidings_request_status import RequestStatusEmulator

    clock = Clock(speed=speed)
    emulator = RequestStatusEmulator(seed=seed, clock=clock, min_open_polls=1)
    outer = [emulator.add_call(emulator.random.randint(2, 9), due=(1.0, 60.0)) for _ in range(ids)]
    inner = sum(len(emulator.calls[i]) for i in outer)
    # the least a client can send: every page of an id once with every inner request still OPEN
    # (min_open_polls=1), then every page again once all are final
    pages = sum(2 * ((len(emulator.calls[i]) + page_size - 1) // page_size) for i in outer)
    floor = max(s.due for i in outer for s in emulator.calls[i]) / speed
    head = [(b"content-type", b"application/json")]
    inner_app = emulator.app

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/plan":
            body = json.dumps({"ids": outer, "inner": inner, "min_requests": pages, "floor": floor,
                               "elapsed": clock.elapsed() / speed, "token": emulator.token,
                               "reads": emulator.status_reads}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": body})
            return
        await inner_app(scope, receive, send)

    return app


def serve(app: Any) -> None:
    import uvicorn

    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio turns Nagle off
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before uvicorn runs wait in the backlog
    config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False, http=http,
                            backlog=2048, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fanout", "emulator"])
    parser.add_argument("--reads", type=int, default=4)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=4)
    args = parser.parse_args()
    if args.mode == "fanout":
        serve(fanout_app(args.reads))
    else:
        serve(emulator_app(args.ids, args.speed, args.seed, args.page_size))
    sys.exit(0)

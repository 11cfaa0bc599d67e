"""Serve an ASGI app on a loopback port with uvicorn, in a thread (any event loop may run beside it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serve_asgi(app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "app") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields ``http://host:port`` (port 0 picks a free one)."""
    import uvicorn  # in tidings[sandbox]

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio turns Nagle off only so
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"serve-{name}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"{name} did not start on {host}:{actual}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{actual}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

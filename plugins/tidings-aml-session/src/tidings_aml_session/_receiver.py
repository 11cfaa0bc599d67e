"""A webhook receiver a CLI run starts for itself (``--param webhook_listen=HOST:PORT``).

The core's :class:`tidings.webhooks.WebhookReceiver` is the one to mount in an
application that runs its own ASGI server in the watch's event loop. A CLI run
has no such server, so this one serves on its own thread (uvicorn) and hands
each verified webhook to the watch's event loop with
``anyio.from_thread.run_sync`` (a watch's streams must only be poked from their
own loop). Verification is the core's Standard Webhooks :func:`tidings.webhooks.verify`
(constant-time compare, timestamp tolerance); an unsigned or badly signed
webhook, or one whose timestamp is out of tolerance, is refused with 401. A
webhook id already accepted is a re-delivery (Standard Webhooks senders retry
with the same id): it is acknowledged with 200 and not handed over again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import anyio.from_thread
import anyio.lowlevel
from tidings import ParseError, Push
from tidings.webhooks import WebhookRejected, serve, verify

__all__ = ["ThreadedReceiver", "serve_receiver"]


class ThreadedReceiver:
    """An ASGI app: verify, parse with ``parse``, then ``push`` in the watch's loop; answer at once.

    :param parse: ``(headers, body) -> [Push]`` (the plugin's ``parse_webhook``).
    :param push: ``(stream, record)`` of the running watch (``ctx.push``).
    :param token: the watch's event loop token (``anyio.lowlevel.current_token()``).
    :param secret: verify Standard Webhooks signatures with it; None accepts unsigned webhooks.
    """

    def __init__(
        self,
        parse: Callable[[Mapping[str, str], bytes], Sequence[Push]],
        push: Callable[..., bool],
        token: Any,
        *,
        secret: str | None = None,
        tolerance: float = 300.0,
        max_body_bytes: int = 64 * 1024,
        remember: int = 10_000,
    ) -> None:
        self._parse = parse
        self._push = push
        self._token = token
        self._secret = secret
        self.tolerance = tolerance
        self.max_body_bytes = max_body_bytes
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0
        self.closed = False
        self._handing_over = 0

    def __repr__(self) -> str:
        return f"ThreadedReceiver(signed={self._secret is not None}, accepted={self.accepted})"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _answer(send, 405, {"error": "POST only"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                self.rejected += 1
                await _answer(send, 413, {"error": "body too large"})
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status, answer = self.handle(headers, body)
        await _answer(send, status, answer)

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Verify, parse and hand over one webhook; the HTTP status and body to answer with."""
        msg_id = None
        if self._secret is not None:
            try:
                msg_id = verify(self._secret, headers, body, tolerance=self.tolerance)
            except WebhookRejected as exc:
                self.rejected += 1
                return 401, {"error": exc.message}
            with self._lock:
                if msg_id in self._seen:
                    # a sender re-delivers with the same webhook-id (Standard Webhooks): acknowledge
                    # it, or it keeps retrying; it was handed over once, which is enough
                    self.duplicates += 1
                    return 200, {"ok": True, "duplicate": True}
        try:
            pushes = self._parse(headers, body)
        except (ParseError, ValueError) as exc:
            self.rejected += 1
            return 400, {"error": str(exc)}
        if msg_id is not None:
            with self._lock:
                if msg_id in self._seen:  # the same id raced in twice
                    self.duplicates += 1
                    return 200, {"ok": True, "duplicate": True}
                self._seen[msg_id] = None
                while len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
        with self._lock:
            if self.closed:
                return 503, {"error": "the watch is not running"}
            self._handing_over += 1
        try:
            anyio.from_thread.run_sync(self._deliver, list(pushes), token=self._token)
        except RuntimeError:
            return 503, {"error": "the watch is not running"}
        finally:
            with self._lock:
                self._handing_over -= 1
        self.accepted += 1
        return 200, {"ok": True}

    def close(self) -> bool:
        """Refuse webhooks from now on (503); True if none is being handed to the loop at this moment."""
        with self._lock:
            self.closed = True
            return self._handing_over == 0

    def _deliver(self, pushes: list[Push]) -> None:
        for push in pushes:
            self._push(push.stream, push.record)


async def _answer(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``PORT`` alone means loopback)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise ValueError(f"webhook_listen must be HOST:PORT, got {text!r}") from None


@contextlib.contextmanager
def serve_receiver(receiver: ThreadedReceiver, listen: str) -> Iterator[str]:
    """Serve ``receiver`` on ``listen`` (``HOST:PORT``; port 0 picks one); yields its URL."""
    host, port = parse_listen(listen)
    with contextlib.ExitStack() as stack:
        for attempt in range(50):  # a previous run's receiver on this port may still be stopping
            try:
                # the core's uvicorn-in-a-thread runner (tidings[sandbox]); it serves any ASGI app
                url = stack.enter_context(serve(receiver, host, port))  # type: ignore[arg-type]
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 49:
                    raise
                time.sleep(0.05)
        yield url + "/"


def current_token() -> Any:
    """The running event loop's token, for :class:`ThreadedReceiver`."""
    return anyio.lowlevel.current_token()

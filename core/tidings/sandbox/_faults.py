"""Fault switches every emulator gets, applied as ASGI middleware to its API routes."""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import attrs

FAULT_KINDS = ("500", "502", "503", "429", "truncated", "non-json", "reset", "error-in-200")


_CUT_OFF = frozenset({"truncated", "reset", "non-json"})


class ConnectionReset(Exception):
    """Raised by the fault middleware to break the connection (in-process: an httpx.ReadError)."""


@attrs.define
class Faults:
    """What goes wrong, and how often.

    :param latency: seconds added to every API response.
    :param error_rate: share of requests answered 500, 502 or 503.
    :param rate_limit_rate: share answered 429 with ``Retry-After: retry_after``.
    :param truncated_rate: share whose JSON body is cut in half (GET only, like resets and non-JSON
        pages: a cut-off answer to a POST or PUT is an outcome the client cannot know, see
        ``tidings.start_step``).
    :param non_json_rate: share answered 200 with an HTML page.
    :param reset_rate: share whose connection breaks mid-response.
    :param error_in_200_rate: share answered 200 with the provider's error body
        (only where the emulator defines :meth:`Emulator.error_in_200`).
    :param writes: serve cut-off faults (truncated, reset, non-JSON) to POST and PUT requests too;
        off by default, since no client can know whether a write whose answer was lost took effect
        (tidings reports it, see ``tidings.start_step``): turn it on to test exactly that.
    :param seed: the random seed, for repeatable runs.

    ``fail_next("503", 2)`` queues exact faults for the next requests, for tests.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    truncated_rate: float = 0.0
    non_json_rate: float = 0.0
    reset_rate: float = 0.0
    error_in_200_rate: float = 0.0
    writes: bool = False
    seed: int = 0
    queued: deque[str] = attrs.field(factory=deque)
    served: dict[str, int] = attrs.field(factory=dict)
    _rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> Faults:
        """From ``"error_rate=0.1,latency=0.05,rate_limit_rate=0.05"`` (the CLI's ``--faults``)."""
        values: dict[str, Any] = {"seed": seed}
        known = [f.name for f in attrs.fields(cls) if f.name not in ("queued", "served", "_rng")]
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
            try:
                values[key] = int(value) if key == "seed" else (value.strip().lower() in ("1", "true", "yes")
                                                                 if key == "writes" else float(value))
            except ValueError:
                raise ValueError(f"fault {key!r} needs a number, got {value!r}") from None
        return cls(**values)

    def fail_next(self, kind: str, times: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        self.queued.extend([kind] * times)

    def pick(self, has_error_in_200: bool) -> str | None:
        if self.queued:
            return self.queued.popleft()
        r = self._rng.random
        choices: list[tuple[float, str]] = [
            (self.error_rate, self._rng.choice(("500", "502", "503"))),
            (self.rate_limit_rate, "429"),
            (self.truncated_rate, "truncated"),
            (self.non_json_rate, "non-json"),
            (self.reset_rate, "reset"),
        ]
        if has_error_in_200:
            choices.append((self.error_in_200_rate, "error-in-200"))
        for rate, kind in choices:
            if rate and r() < rate:
                return kind
        return None

    def middleware(self, app: Any, error_in_200: Callable[[], Any] | None, is_api: Callable[[str], bool]) -> Any:
        faults = self

        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not is_api(scope["path"]):
                await app(scope, receive, send)
                return
            if faults.latency:
                await anyio.sleep(faults.latency)
            kind = faults.pick(error_in_200 is not None)
            if kind in _CUT_OFF and not faults.writes and scope["method"] not in ("GET", "HEAD"):
                # an answer cut off after a POST or PUT took effect cannot be survived without an idempotency
                # key (the client must not send it again: it reports StartOutcomeUnknown): served whole
                kind = None
            if kind is None:
                await app(scope, receive, send)
                return
            faults.served[kind] = faults.served.get(kind, 0) + 1
            if kind in ("500", "502", "503", "429"):
                headers = [(b"content-type", b"application/json")]
                if kind == "429":
                    headers.append((b"retry-after", str(faults.retry_after).rstrip("0").rstrip(".").encode()))
                body = json.dumps({"error": f"sandbox fault {kind}"}).encode()
                await _send(send, int(kind), headers, body)
            elif kind == "non-json":
                await _send(send, 200, [(b"content-type", b"text/html")], b"<html><body>Bad gateway</body></html>")
            elif kind == "error-in-200":
                assert error_in_200 is not None
                await _send(send, 200, [(b"content-type", b"application/json")], json.dumps(error_in_200()).encode())
            elif kind in ("truncated", "reset"):
                captured: list[dict[str, Any]] = []

                async def capture(message: dict[str, Any]) -> None:
                    captured.append(message)

                await app(scope, receive, capture)
                start = next(m for m in captured if m["type"] == "http.response.start")
                body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
                if kind == "truncated":
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    await _send(send, start["status"], headers, body[: len(body) // 2])
                else:
                    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
                    await send({"type": "http.response.body", "body": body[: len(body) // 3], "more_body": True})
                    raise ConnectionReset("sandbox fault: connection reset")

        return wrapped


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

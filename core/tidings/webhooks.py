"""Receive webhooks for a running watch: verify, de-duplicate, hand over, answer 200 at once.

A message id already handled is acknowledged (200) and never delivered again, so a
sender's re-delivery stops; an old timestamp (outside ``tolerance``) or a bad signature
is refused with 401. Signatures follow the Standard Webhooks scheme: headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">``, several space-separated signatures allowed). A secret
given as ``whsec_<base64>`` is base64-decoded (a ``whsec_`` secret that is not valid base64,
or decodes to nothing, is refused when the receiver is made); any other non-empty text is used as UTF-8.

:func:`receive` serves a receiver for one run of a watch on its own port (what
``tidings follow --webhook-listen`` does) and gives the watch its URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from tidings._errors import ConfigurationError, ParseError, TidingsError
from tidings._plugins import await_me_maybe

if TYPE_CHECKING:
    from tidings._watch import Watch

__all__ = ["WebhookReceiver", "WebhookRejected", "receive", "serve", "sign", "verify"]


class WebhookRejected(TidingsError):
    """A webhook failed verification (unsigned, badly signed, too old, or replayed)."""


def _key(secret: str) -> bytes:
    """The HMAC key of a secret.

    :raises ConfigurationError: a ``whsec_`` secret that is not base64 (or is empty), an empty
        secret: either would sign with a key anyone can guess. The secret is never shown.
    """
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_") :], validate=True)
        except ValueError:  # binascii.Error
            raise ConfigurationError(
                "the webhook secret starts with whsec_ but the rest is not valid base64: copy it again "
                "from the provider"
            ) from None
    else:
        try:
            key = secret.encode()
        except UnicodeEncodeError:
            raise ConfigurationError("the webhook secret is not valid text (a lone surrogate?)") from None
    if not key:
        raise ConfigurationError("the webhook secret is empty: give the secret the provider signs with")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a message (what a provider sends)."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: float = 300.0, now: float | None = None
) -> str:
    """Check a webhook's signature and age; return its ``webhook-id``.

    :raises WebhookRejected: with the reason (never the secret).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookRejected("unsigned webhook: webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookRejected("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookRejected(f"webhook timestamp is more than {tolerance:.0f}s away from now (replay?)")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookRejected("webhook signature does not match")


class WebhookReceiver:
    """An ASGI app that hands verified webhooks to a running :class:`tidings.Watch`.

    Mount it in your application, or run it standalone with :func:`serve`.

    :param secret: verify signatures with it; without one, webhooks are accepted unsigned.
    :param max_body_bytes: larger bodies are refused with 413.
    :param tolerance: seconds a timestamp may be away from now.
    :param remember: how many webhook ids are kept to refuse replays.
    """

    def __init__(
        self,
        watch: Watch,
        *,
        secret: str | None = None,
        max_body_bytes: int = 256 * 1024,
        tolerance: float = 300.0,
        remember: int = 10_000,
    ) -> None:
        self.watch = watch
        if secret is not None:
            _key(secret)  # refuse a malformed secret now, not on the first webhook
        self._secret = secret
        self.max_body_bytes = max_body_bytes
        self.tolerance = tolerance
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0
        self.closed = False
        self._lock = threading.Lock()
        self._handing_over = 0  # webhooks being handed to the watch right now

    def __repr__(self) -> str:
        return f"WebhookReceiver(watch={self.watch.name!r}, signed={self._secret is not None})"

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
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status, answer = await self.handle(headers, body)
        await _answer(send, status, answer)

    async def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Verify and deliver one webhook; returns the HTTP status and body to answer with."""
        watch = self.watch
        not_running = 503, {"error": "the watch is not running"}
        if not watch.running or self.closed:
            return not_running
        try:
            ctx = watch.context()
        except ConfigurationError:  # it ended a moment ago
            return not_running
        msg_id = None
        if self._secret is not None:
            verdict = None
            if watch.hooks.implements("verify_webhook"):
                verdict = await await_me_maybe(
                    watch.hooks.caller("verify_webhook")(ctx=ctx, headers=headers, body=body, secret=self._secret)
                )
            try:
                if verdict is None:
                    msg_id = verify(self._secret, headers, body, tolerance=self.tolerance)
                elif not verdict:
                    raise WebhookRejected("the provider's verify_webhook refused it")
                else:
                    msg_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id")
            except WebhookRejected as exc:
                self.rejected += 1
                return 401, {"error": exc.message}
            if msg_id is not None and msg_id in self._seen:
                # a sender re-delivering (or someone replaying) a message already handled: acknowledge
                # it so a real sender stops retrying, and never hand it to the watch twice
                self.duplicates += 1
                return 200, {"ok": True, "duplicate": True}
        if not watch.hooks.implements("parse_webhook"):
            return 404, {"error": f"the {watch.provider} provider takes no webhooks"}
        try:
            pushes = await await_me_maybe(watch.hooks.caller("parse_webhook")(ctx=ctx, headers=headers, body=body))
        except (ParseError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
            self.rejected += 1
            reason = str(exc) if isinstance(exc, TidingsError) else f"the body cannot be read ({type(exc).__name__})"
            return 400, {"error": reason[:500]}
        with self._lock:  # close() must know whether a hand-over is under way
            if self.closed:
                return not_running
            self._handing_over += 1
        try:
            handed = [watch.push(push.stream, push.record) for push in pushes or ()]
        finally:
            with self._lock:
                self._handing_over -= 1
        if not all(handed) and not watch.running:
            return not_running  # the run ended meanwhile: the sender may try again later
        if msg_id is not None:
            self._seen[msg_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        self.accepted += 1
        return 200, {"ok": True}

    def close(self) -> bool:
        """Refuse webhooks from now on (503); True if none is being handed to the watch at this moment.

        A hand-over from a server thread waits for the watch's event loop: while one is under way,
        stopping that server from the loop's own thread (joining it) would deadlock.
        """
        with self._lock:
            self.closed = True
            return self._handing_over == 0


async def _answer(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


@contextmanager
def serve(receiver: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a receiver (or any ASGI app) on its own port in a thread (needs ``tidings[sandbox]``); yields its URL.

    A :class:`WebhookReceiver` is safe to serve this way: :meth:`tidings.Watch.push`
    hands each webhook over to the watch's own event loop. When the block ends the
    receiver is closed (503 from then on); if a webhook is being handed over at that
    moment, the server stops in the background instead of being waited for, so leaving
    the block from the watch's own loop never deadlocks.
    """
    from tidings._serve import serve_asgi

    stack = ExitStack()
    url = stack.enter_context(serve_asgi(receiver, host, port, name="webhook receiver"))
    try:
        yield url
    finally:
        close = getattr(receiver, "close", None)
        if close is None or close():
            stack.close()
        else:
            threading.Thread(target=stack.close, daemon=True, name="webhook receiver stop").start()


def _parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``PORT`` alone means loopback)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigurationError(f"a webhook listen address is HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", number


@contextmanager
def receive(
    watch: Watch, listen: str = "127.0.0.1:0", *, secret: str | None = None, url: str | None = None, **options: Any
) -> Iterator[WebhookReceiver]:
    """Serve a :class:`WebhookReceiver` for ``watch`` on ``listen`` (``HOST:PORT``; port 0 picks one).

    Serving starts at once, so enter this before running the watch: a provider may send a
    webhook as soon as ``start`` has asked for them. While the block runs, ``watch.webhook_url``
    (``ctx.webhook_url`` for the plugin) is ``url``, or the one the watch was given, or
    ``http://HOST:PORT/`` of the listener. Webhooks get 503 before the watch runs and after it ended.

    :param secret: verify Standard Webhooks signatures with it (never shown).
    :param options: more :class:`WebhookReceiver` arguments (``max_body_bytes``, ``tolerance``…).
    :raises ConfigurationError: the provider takes no webhooks, or ``listen`` is not ``HOST:PORT``.
    """
    if not watch.hooks.implements("parse_webhook"):
        raise ConfigurationError("this provider takes no webhooks (it has no parse_webhook)", provider=watch.provider)
    host, port = _parse_address(listen)
    receiver = WebhookReceiver(watch, secret=secret, **options)
    before = watch.webhook_url
    with serve(receiver, host, port) as served:
        watch.webhook_url = url or before or served + "/"
        try:
            yield receiver
        finally:
            watch.webhook_url = before

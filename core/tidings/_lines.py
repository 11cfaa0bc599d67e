"""The CLI's output: one JSON line per event on stdout, written a page at a time."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import tidings

__all__ = ["Lines", "NoLines", "line"]

try:
    from msgspec.json import Encoder as Encoder  # the `fast` extra
except ImportError:  # pragma: no cover - exercised only without the extra
    _encode: Callable[[Any], bytes] | None = None
else:
    _encode = Encoder(enc_hook=str).encode


def line(event: tidings.Event) -> bytes:
    """One event as a JSON line (UTF-8). Text no codec can write (a lone surrogate) is escaped (``\\ud800``).

    :raises tidings.Undeliverable: the event cannot be written as JSON at all (it is dead-lettered).
    """
    data = event.to_json()
    if _encode is not None:
        try:
            return _encode(data) + b"\n"
        except (UnicodeEncodeError, TypeError, ValueError, OverflowError, RecursionError):
            pass  # json below escapes what msgspec refuses
    try:
        return json.dumps(data, ensure_ascii=True, default=str).encode("ascii") + b"\n"
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise tidings.Undeliverable(f"the event cannot be written as a JSON line: {exc}") from exc


class Lines:
    """stdout's JSON lines: a page's lines are written in one chunk and flushed when the page ends.

    The engine ends a page (``on_page``) before it saves the position after it, so a line is
    written before its position is saved.
    """

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def emit(self, event: tidings.Event) -> None:
        self.pending.append(line(event))

    def flush(self) -> None:
        if self.pending:
            chunk, self.pending = b"".join(self.pending), []
            out = sys.stdout.buffer
            out.write(chunk)
            out.flush()


class NoLines(Lines):
    """``--into``: the table is the output, stdout gets no lines."""

    def emit(self, event: tidings.Event) -> None:
        return None

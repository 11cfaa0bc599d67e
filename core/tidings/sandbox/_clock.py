"""A clock an emulator reads, that a test can run fast or move forward."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


class Clock:
    """Wall time for the emulator: ``now()`` starts at ``start`` and runs at ``speed``.

    :param start: the emulated time at creation (default: the real time now, UTC).
    :param speed: emulated seconds per real second (10 makes a 30 s job take 3 s).
    """

    def __init__(self, start: datetime | None = None, *, speed: float = 1.0) -> None:
        self._start = start or datetime.now(timezone.utc)
        self._t0 = time.monotonic()
        self.speed = speed
        self._offset = 0.0

    def elapsed(self) -> float:
        """Emulated seconds since creation."""
        return (time.monotonic() - self._t0) * self.speed + self._offset

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.elapsed())

    def advance(self, seconds: float) -> None:
        """Move emulated time forward at once (results due by then 'arrive')."""
        self._offset += seconds

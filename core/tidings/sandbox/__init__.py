"""The sandbox toolkit: write a faithful emulator of a provider API in an afternoon.

An :class:`Emulator` is a Starlette app with a controllable :class:`Clock`,
seeded randomness, and :class:`Faults` every emulator gets for free (latency,
5xx, 429 with ``Retry-After``, truncated or non-JSON bodies, connection resets,
an error code inside a 200). The same object runs in-process
(:meth:`Emulator.transport`, no sockets) or on a loopback port
(:meth:`Emulator.serve`, uvicorn in a thread). Needs ``tidings[sandbox]``.
"""

from tidings.sandbox._clock import Clock
from tidings.sandbox._emulator import Emulator, Scenario
from tidings.sandbox._faults import Faults

__all__ = ["Clock", "Emulator", "Faults", "Scenario"]

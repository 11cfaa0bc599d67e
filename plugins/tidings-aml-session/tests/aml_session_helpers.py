"""Helpers for the aml-session tests: an emulator on a fast clock and a watch over it."""

from __future__ import annotations

from typing import Any

import anyio
import tidings
from tidings.sandbox import Clock
from tidings_aml_session import AmlSessionEmulator

SECRET = "whsec_" + "c2FuZGJveC13ZWJob29rLXNlY3JldC0xMjM0NTY="  # base64 of a sandbox secret
OK_ORG = "923609016"
FAIL_ORG = "999999999"
REPORTS = "aml-report,sanctions-report"


def make_emulator(**kwargs: Any) -> AmlSessionEmulator:
    kwargs.setdefault("clock", Clock(speed=10.0))
    return AmlSessionEmulator(seed=3, **kwargs)


def make_watch(emulator: AmlSessionEmulator, params: dict[str, Any], **kwargs: Any) -> tidings.Watch:
    options: dict[str, Any] = {
        "base_url": emulator.base_url,
        "token": emulator.token,
        "transport": emulator.transport(),
        "interval": 0.02,
        "max_interval": 0.05,
        "retry_base_wait": 0.01,
        "retry_max_wait": 0.05,
    }
    options.update(kwargs)
    return tidings.Watch("aml-session", params=params, **options)


def kinds(events: list[tidings.Event]) -> list[str]:
    return [e.id.split(":", 1)[1] for e in events]


async def follow(emulator: Any, watch: tidings.Watch) -> list[tidings.Event]:
    got: list[tidings.Event] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(emulator.run_webhooks)
            try:
                with anyio.fail_after(20):
                    await watch.run(got.append)
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return got


async def wait_until(condition: Any, within: float = 10.0) -> None:
    """Poll ``condition()`` until it is true (emulator state has no event to wait on)."""
    with anyio.fail_after(within):
        while not condition():
            await anyio.sleep(0.01)

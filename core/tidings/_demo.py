"""``tidings demo``: every installed provider, end to end, against its emulator in-process."""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import attrs

import tidings


@attrs.define
class DemoRun:
    provider: str
    kind: str
    watch: tidings.Watch | None = None
    outcome: str = "waiting"
    seconds: float = 0.0
    terminal: int = 0
    ok: bool = False

    @property
    def events(self) -> int:
        return self.watch.stats.delivered if self.watch is not None else 0


async def _one(run: DemoRun, info: tidings.ProviderInfo, limit: float) -> None:
    from tidings.sandbox import Clock

    started = time.monotonic()
    try:
        if info.emulator is None:
            run.outcome = "no emulator"
            return
        emulator = info.emulator()
        if hasattr(emulator, "clock"):
            emulator.clock = Clock(speed=10.0)
        scenario = emulator.scenario()
        run.watch = tidings.Watch(
            info.name,
            base_url=emulator.base_url,
            token=emulator.token,
            transport=emulator.transport(),
            params=scenario.params,
            page_size=scenario.page_size,
            after=scenario.after,
            until_idle=info.kind == "feed",
            interval=0.05,
            max_interval=0.5,
            retry_base_wait=0.05,
            retry_max_wait=0.5,
        )
        run.outcome = "running"

        def handler(event: tidings.Event) -> None:
            if event.terminal:
                run.terminal += 1

        with anyio.fail_after(limit):
            await run.watch.run(handler)
        expected = emulator.expected_ids(scenario)
        run.ok = run.events >= len(expected) if expected else run.events > 0
        run.outcome = ("ended" if info.kind == "tracker" else "idle") + ("" if run.ok else " (events missing)")
    except TimeoutError:
        run.outcome = f"timed out after {limit:.0f}s"
    except tidings.TidingsError as exc:
        run.outcome = f"error: {exc}"
    finally:
        run.seconds = time.monotonic() - started


def _table(runs: list[DemoRun]) -> Any:
    from rich.table import Table

    table = Table(title="tidings demo")
    for column in ("provider", "kind", "events", "terminal", "time", "outcome"):
        table.add_column(column, justify="right" if column in ("events", "terminal", "time") else "left")
    for r in runs:
        style = "green" if r.ok else ("yellow" if r.outcome in ("running", "waiting") else "red")
        table.add_row(r.provider, r.kind, str(r.events), str(r.terminal), f"{r.seconds:.1f}s", r.outcome, style=style)
    return table


async def run_demo(limit: float = 50.0) -> bool:
    """Run the demo; True when every provider reached its end."""
    found = tidings.providers()
    if not found:
        sys.stderr.write("no provider plugins installed: pip install the plugins under plugins/\n")
        return False
    entries = sorted(found.values(), key=lambda e: e.info.name)
    runs = [DemoRun(e.info.name, e.info.kind) for e in entries]
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:  # pragma: no cover
        Live = None  # type: ignore[assignment,misc]

    async def all_runs() -> None:
        async with anyio.create_task_group() as tg:
            for run, entry in zip(runs, entries, strict=True):
                tg.start_soon(_one, run, entry.info, limit)

    if Live is not None:
        console = Console(stderr=True)
        with Live(_table(runs), console=console, refresh_per_second=8, transient=False) as live:
            async with anyio.create_task_group() as tg:

                async def refresh() -> None:
                    while True:
                        live.update(_table(runs))
                        await anyio.sleep(0.125)

                tg.start_soon(refresh)
                await all_runs()
                tg.cancel_scope.cancel()
            live.update(_table(runs))
    else:  # pragma: no cover
        await all_runs()
        for r in runs:
            sys.stderr.write(f"{r.provider:20} {r.kind:8} {r.events:6} {r.seconds:6.1f}s {r.outcome}\n")
    return all(r.ok for r in runs)

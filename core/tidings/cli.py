"""The ``tidings`` command: list providers, follow one, serve an emulator, run the demo.

stdout carries only machine-readable output (one JSON object per event);
progress, summaries and errors go to stderr. Needs ``tidings[cli]``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NoReturn

try:
    import click
except ImportError:  # pragma: no cover - exercised only without the extra
    click = None  # type: ignore[assignment]

import anyio
import attrs

import tidings
from tidings._delivery import first_error as _first_error
from tidings._errors import ConfigurationError, TidingsError
from tidings._lines import Lines as _Lines
from tidings._lines import NoLines as _NoLines
from tidings._options import describe
from tidings._origin import OriginMismatch
from tidings._progress import Status
from tidings.webhooks import _parse_address, receive

EXIT_ERROR = 1
EXIT_USAGE = 2
DEFAULT_CHECKPOINT = "tidings-checkpoints.sqlite3"


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"tidings: error: {message}", err=True)
    sys.exit(code)


def _params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--param takes KEY=VALUE, got {pair!r}")
        if key in params:
            old = params[key]
            params[key] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            params[key] = value
    return params


async def _follow(watch: tidings.Watch, status: Status, lines: _Lines) -> str:
    stopped_by: list[str] = []

    async def on_signals(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                stopped_by.append(signal.Signals(signum).name)
                watch.stop()

    emit = lines.emit

    def handler(event: tidings.Event) -> None:
        emit(event)
        status.count(event)
        status.tick()

    async def ticker() -> None:
        while True:
            if status.tty:
                await anyio.sleep(0.5)
                status.tick(force=True)
            else:
                await anyio.sleep(10)
                status.log()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(on_signals, tg.cancel_scope)
            if status.enabled:
                tg.start_soon(ticker)
            try:
                await watch.run(handler, on_page=lines.flush)
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _first_error(group)  # noqa: B904 - keeps the error's own cause
    if stopped_by:
        return f"stopped by {stopped_by[0]}, position saved"
    return _outcome(watch)


def _outcome(watch: tidings.Watch) -> str:
    """How a run that was not interrupted ended, for the summary line."""
    s = watch.stats
    if watch.kind != "tracker":
        return "idle"
    if s.streams_ended < s.streams:  # --until-idle stopped it with work still open
        return f"idle, {s.streams - s.streams_ended} of {s.streams} still open, position saved: run again to go on"
    if s.pages == 0 and s.delivered == 0:
        return (f"ended: watch {watch.name!r} had already ended in an earlier run; "
                "use another --name to follow new work")
    return "ended"


def _table_store(checkpoint: str | None, into: str | None, table: str | None) -> tidings.TableStore:
    """With --into, the database that holds the positions with the table."""
    if into is None:
        raise ConfigurationError("--table names the table --into fills: give --into URL too")
    if checkpoint is not None:
        raise ConfigurationError("--into keeps the positions in its database with the events: drop --checkpoint")
    return tidings.open_store(into, table=table or "tidings_events")


def _check_faults(faults: Any) -> None:
    """Rates are shares of requests (0 to 1); latency and Retry-After are seconds (0 or more)."""
    for name in ("latency", "retry_after", *(n for n in attrs.asdict(faults, recurse=False) if n.endswith("_rate"))):
        value = getattr(faults, name)
        ok = 0.0 <= value <= 1.0 if name.endswith("_rate") else 0.0 <= value < float("inf")
        if not ok:
            what = "a share of requests from 0 to 1" if name.endswith("_rate") else "seconds, 0 or more"
            raise ConfigurationError(f"--faults {name}={value:g}: must be {what}")


@contextmanager
def _sandbox(info: tidings.ProviderInfo, faults: str | None = None, port: int = 0) -> Iterator[tuple[Any, Any, str]]:
    if info.emulator is None:
        raise ConfigurationError("this plugin ships no emulator", provider=info.name)
    from tidings.sandbox import Faults

    emulator = info.emulator()
    if faults:
        try:
            emulator.faults = Faults.parse(faults, seed=emulator.seed)
        except ValueError as exc:
            raise ConfigurationError(f"--faults: {exc}") from None
        _check_faults(emulator.faults)
    scenario = emulator.scenario()
    with emulator.serve(port=port) as base_url:
        yield emulator, scenario, base_url


def _metrics(listen: str | None) -> AbstractContextManager[str | None]:
    """``--metrics-port [HOST:]PORT``: a plugin's ``serve_metrics`` serves the metrics while the run lasts."""
    if listen is None:
        return nullcontext()
    try:
        host, port = _parse_address(listen)
    except ConfigurationError:
        raise ConfigurationError(f"--metrics-port takes PORT or HOST:PORT, got {listen!r}") from None
    served = tidings._plugins.get_plugin_manager().hook.serve_metrics(host=host, port=port)
    if served is None:
        raise ConfigurationError(
            "--metrics-port needs a metrics plugin: pip install 'tidings-opentelemetry[prometheus]'"
        )
    return served  # type: ignore[no-any-return]


def _run_guarded(debug: bool, func: Callable[[], Any]) -> Any:
    try:
        return func()
    except tidings.HandlerError as exc:
        if isinstance(exc.__cause__, BrokenPipeError):  # stdout closed (`| head`): the position is saved
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        if debug:
            traceback.print_exc()
        _fail(str(exc))
    except ConfigurationError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc), EXIT_USAGE)
    except TidingsError as exc:
        if debug:
            traceback.print_exc()
        _fail(str(exc))
    except OSError as exc:
        if debug:
            traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc}")


if click is not None:

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(tidings.__version__, prog_name="tidings")
    def main() -> None:
        """Follow asynchronous provider APIs until their results arrive."""

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    def providers(as_json: bool, debug: bool) -> None:
        """List the installed provider plugins."""
        found = _run_guarded(debug, tidings.providers)
        rows = [
            {
                "name": e.info.name,
                "distribution": e.distribution,
                "version": e.version,
                "kind": e.info.kind,
                "description": e.info.description,
                "options": [describe(p) for p in e.info.params],
            }
            for e in sorted(found.values(), key=lambda e: e.info.name)
        ]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no provider plugins installed (pip install tidings-<provider>)", err=True)
            return
        widths = {k: max(len(str(r[k] or "-")) for r in rows) for k in ("name", "distribution", "version", "kind")}
        for r in rows:
            click.echo(
                "  ".join(str(r[k] or "-").ljust(widths[k]) for k in ("name", "distribution", "version", "kind"))
                + "  "
                + r["description"]
            )

    @main.command()
    @click.argument("provider")
    @click.option("--base-url", help="The provider's base URL (default: the plugin's production URL).")
    @click.option("--token", envvar="TIDINGS_TOKEN", help="Bearer token (or set TIDINGS_TOKEN).", show_envvar=True)
    @click.option(
        "--param", "param_pairs", multiple=True, metavar="KEY=VALUE", help="A provider parameter; repeatable."
    )
    @click.option("--checkpoint", type=click.Path(dir_okay=False),
                  help=f"The SQLite file holding positions (default: {DEFAULT_CHECKPOINT}; "
                       "with --sandbox, none: the run keeps its positions in memory).")
    @click.option("--name", help="The watch name within the checkpoint file (default: the provider name).")
    @click.option("--into", metavar="URL", help="Commit each page's events into a table, with the position, in one "
                  "transaction: sqlite:///F.db, duckdb:///F.duckdb, postgresql://USER@HOST/DB (nothing on stdout).")
    @click.option("--table", "table_name", metavar="NAME", help="The table --into fills (default: tidings_events).")
    @click.option("--rebase", is_flag=True,
                  help="Resume a position saved against another --base-url (refused otherwise).")
    @click.option("--after", help="Where a new watch starts: ISO-8601 time or epoch seconds.")
    @click.option("--until-idle", is_flag=True, help="End a feed once a poll finds nothing new.")
    @click.option("--interval", type=click.FloatRange(min=0), default=1.0, show_default=True,
                  help="Seconds between polls while events keep coming (idle polls back off to --max-interval).")
    @click.option("--max-interval", type=click.FloatRange(min=0),
                  help="The longest wait between idle polls (default: 30 s for a feed, 5 s for a tracker).")
    @click.option("--page-size", type=click.IntRange(min=1), help="Ask the provider for pages of this size.")
    @click.option("--sandbox", is_flag=True, help="Start the plugin's emulator on loopback and follow it.")
    @click.option("--webhook-listen", metavar="HOST:PORT",
                  help="Receive the provider's webhooks on this address during the run (port 0 picks one).")
    @click.option("--webhook-secret", envvar="TIDINGS_WEBHOOK_SECRET", show_envvar=True,
                  help="Verify Standard Webhooks signatures with this secret (or set TIDINGS_WEBHOOK_SECRET).")
    @click.option("--webhook-url", metavar="URL",
                  help="The public URL given to the provider (default: http://HOST:PORT/ of --webhook-listen).")
    @click.option("--metrics-port", metavar="[HOST:]PORT",
                  help="Serve Prometheus metrics during the run (loopback unless HOST; needs tidings-opentelemetry).")
    @click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio", show_default=True,
                  help="The async backend.")
    @click.option("--quiet", is_flag=True, help="No progress on stderr.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    def follow(
        provider: str,
        base_url: str | None,
        token: str | None,
        param_pairs: tuple[str, ...],
        checkpoint: str | None,
        name: str | None,
        into: str | None,
        table_name: str | None,
        rebase: bool,
        after: str | None,
        until_idle: bool,
        interval: float,
        max_interval: float | None,
        page_size: int | None,
        sandbox: bool,
        webhook_listen: str | None,
        webhook_secret: str | None,
        webhook_url: str | None,
        metrics_port: str | None,
        backend: str,
        quiet: bool,
        debug: bool,
    ) -> None:
        """Follow PROVIDER and print each delivered event as one JSON object per line.

        A tracker exits 0 when every subject has ended; a feed runs until interrupted
        (SIGINT/SIGTERM stop it after the event in progress, position saved), or with
        --until-idle exits 0 once a poll finds nothing new. A second run with the same
        --checkpoint and --name resumes where the first stopped. With --webhook-listen,
        the provider's webhooks make the watch poll (or deliver) at once; polling goes on.
        """

        def go() -> None:
            if webhook_url and not webhook_listen:
                raise ConfigurationError("--webhook-url needs --webhook-listen (the receiver it points to)")
            params = _params(param_pairs)
            entry = tidings._plugins.provider(provider)
            if sandbox and rebase and entry.info.kind == "tracker":
                raise ConfigurationError("--rebase cannot carry a sandbox tracker over: its queue or session "
                                         "lived in the emulator of the earlier run", provider=entry.info.name)
            # a sandbox run never touches real positions: its own store unless --checkpoint says otherwise
            path = checkpoint if checkpoint is not None or sandbox else DEFAULT_CHECKPOINT
            store: tidings.CheckpointStore
            if into is not None or table_name is not None:  # the positions go with the events
                store, path = _table_store(checkpoint, into, table_name), "in the --into database"
            else:
                store = tidings.SQLiteStore(path) if path is not None else tidings.MemoryStore()
            context = _sandbox(entry.info) if sandbox else nullcontext(None)
            with context as box:
                options: dict[str, Any] = {}
                if box is not None:
                    emulator, scenario, url = box
                    params = {**scenario.params, **params}
                    options.update(base_url=base_url or url, token=token or emulator.token,
                                   page_size=page_size or scenario.page_size, after=after or scenario.after)
                else:
                    options.update(base_url=base_url, token=token, page_size=page_size, after=after)
                longest = max_interval if max_interval is not None else (5.0 if entry.info.kind == "tracker" else 30.0)
                watch = tidings.Watch(
                    provider, name=name, params=params, store=store, until_idle=until_idle, rebase=rebase,
                    interval=interval, max_interval=max(longest, interval), **options,
                )
                status = Status(watch, enabled=not quiet)
                receiving = (
                    receive(watch, webhook_listen, secret=webhook_secret, url=webhook_url)
                    if webhook_listen else nullcontext()
                )
                # serving before the watch starts: a provider may send a webhook at once
                with receiving, _metrics(metrics_port) as metrics_url:
                    if status.tty:  # a log or a pipe gets only the summary line (or the one error line)
                        hooks = f", webhooks at {watch.webhook_url}" if webhook_listen else ""
                        hooks += f", metrics at {metrics_url}" if metrics_url else ""
                        click.echo(f"following {watch.provider} at {tidings._errors.safe_url(watch.base_url)} "
                                   f"as watch {watch.name!r} (checkpoint {path or 'in memory'}){hooks}", err=True)
                    try:
                        sys.stdout.flush()
                        lines = _Lines() if into is None else _NoLines()  # --into: the table is the output
                        outcome = anyio.run(_follow, watch, status, lines, backend=backend)
                    except OriginMismatch as exc:
                        if box is None:
                            raise
                        raise ConfigurationError(
                            f"{exc.message} (each --sandbox run serves a new emulator: drop --checkpoint to keep "
                            "the run's positions in memory)", provider=exc.provider) from exc
                    finally:
                        anyio.run(store.aclose, backend=backend)
                if not quiet:
                    status.done(outcome)

        _run_guarded(debug, go)

    @main.command("sandbox")
    @click.argument("provider")
    @click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on (default: any free one).")
    @click.option("--faults", help="Fault switches, e.g. 'error_rate=0.1,rate_limit_rate=0.05,latency=0.02'.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    def sandbox_cmd(provider: str, port: int, faults: str | None, debug: bool) -> None:
        """Serve PROVIDER's emulator on loopback until interrupted; print its base URL."""

        def go() -> None:
            entry = tidings._plugins.provider(provider)
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            with _sandbox(entry.info, faults, port) as (emulator, scenario, url):
                click.echo(url)
                sys.stdout.flush()
                pairs = [(k, v) for k, vs in scenario.params.items() for v in (vs if isinstance(vs, list) else [vs])]
                hint = " ".join(f"--param {k}={v}" for k, v in pairs)
                if scenario.after:
                    hint += f" --after {scenario.after}"
                if scenario.page_size:
                    hint += f" --page-size {scenario.page_size}"
                click.echo(
                    f"{provider} emulator at {url} (token: the emulator's sandbox token, see its docs)\n"
                    f"try: tidings follow {provider} --base-url {url} --token {emulator.token} {hint}".rstrip(),
                    err=True,
                )
                stop.wait()

        _run_guarded(debug, go)

    @main.command()
    @click.option("--backend", type=click.Choice(["asyncio", "trio"]), default="asyncio", show_default=True)
    @click.option("--timeout", type=float, default=50.0, show_default=True, help="Seconds allowed per provider.")
    @click.option("--debug", is_flag=True, help="Show tracebacks.")
    def demo(backend: str, timeout: float, debug: bool) -> None:
        """Run every installed provider end to end against its emulator, in-process.

        Needs no network and no configuration: a feed is read until idle, a
        tracker from its start to its terminal event; ends with a summary table.
        """
        from tidings._demo import run_demo

        ok = _run_guarded(debug, lambda: anyio.run(run_demo, timeout, backend=backend))
        sys.exit(0 if ok else EXIT_ERROR)

else:  # pragma: no cover

    def main() -> None:
        sys.stderr.write("tidings: the command needs its extra: pip install 'tidings[cli]'\n")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

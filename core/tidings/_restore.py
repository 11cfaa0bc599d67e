"""Where a run begins: its streams (those of a run not finished, or what ``start`` gives) and each one's position."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tidings._context import WatchContext
from tidings._convert import converter
from tidings._errors import PluginError, StoreError
from tidings._models import ProviderInfo, Stream
from tidings._origin import Origin
from tidings._origin import bind as bind_origin
from tidings._plugins import ProviderHooks, await_me_maybe
from tidings._store import CheckpointStore

__all__ = ["restore_position", "restore_streams"]


async def restore_streams(
    store: CheckpointStore,
    watch: str,
    info: ProviderInfo,
    start: Callable[[], Awaitable[Any]] | None,
    origin: Origin | None = None,
    *,
    rebase: bool = False,
) -> tuple[int, list[Stream]]:
    """The run number and streams saved for ``watch``; else ``start()``'s streams (or one feed stream), saved at once.

    :param start: calls the provider's ``start`` hook (with retries), or None if it has none.
    :param origin: where this run reads from: a saved run of another origin is refused (see
        :mod:`tidings._origin`; ``rebase`` carries a position to another base URL), a new one records it.
    """
    saved = await store.load_streams(watch)
    if origin is not None:
        await bind_origin(store, watch, saved, origin, rebase=rebase)
    if saved is not None:
        return int(saved["run"]), [
            Stream(s["key"], None if s["subjects"] is None else frozenset(s["subjects"]), s.get("data") or {})
            for s in saved["streams"]
        ]
    started = await start() if start is not None else None
    streams = list(started) if started is not None else [Stream()]
    if not streams or not all(isinstance(s, Stream) for s in streams):
        raise PluginError("start must return a non-empty sequence of tidings.Stream", provider=info.name)
    if info.kind == "tracker" and any(s.subjects is None for s in streams):
        raise PluginError("a tracker's streams must name their subjects", provider=info.name)
    run = 1
    await store.save_streams(
        watch,
        {
            "run": run,
            **({"origin": origin.to_json()} if origin is not None else {}),
            "streams": [
                {"key": s.key, "subjects": None if s.subjects is None else sorted(s.subjects), "data": dict(s.data)}
                for s in streams
            ],
        },
    )
    return run, streams


async def restore_position(
    store: CheckpointStore, watch: str, store_key: str, hooks: ProviderHooks, ctx: WatchContext
) -> tuple[Any, dict[str, Any] | None]:
    """A stream's saved cursor and state; or, never saved, its ``initial_cursor`` (or the empty cursor) and None."""
    info = hooks.info
    state = await store.load(watch, store_key)
    if state is not None:
        try:
            return converter.structure(state["cursor"], info.cursor_type), state
        except Exception as exc:
            raise StoreError(
                f"the saved position of watch {watch!r} does not fit {info.cursor_type.__name__} "
                f"({exc}); use another --name or remove the checkpoint file",
                provider=info.name,
            ) from exc
    if hooks.implements("initial_cursor"):
        return await await_me_maybe(hooks.caller("initial_cursor")(ctx=ctx)), None
    return info.cursor_type(), None

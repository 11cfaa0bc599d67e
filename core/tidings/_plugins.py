"""Plugin discovery and per-watch dispatch.

One pluggy ``PluginManager`` holds every plugin. A watch talks to its provider
through :class:`ProviderHooks`: for each provider hook it keeps a
``subset_hook_caller`` that leaves out every *other* provider plugin, so a call
reaches the watch's provider and the cross-cutting plugins only. When nothing
but the provider implements a hook (the usual case), the call goes straight to
the provider's function: same result, none of pluggy's per-call cost on the
per-event hot path.

Environment switches: ``TIDINGS_LOAD_PLUGINS`` (comma-separated entry-point
names to load; empty loads none), ``TIDINGS_BLOCK_PLUGINS`` (names never to
load), ``TIDINGS_TRACE_PLUGINS=1`` (log every hook call to stderr).
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

import attrs
import pluggy

from tidings import hookspecs
from tidings._errors import ConfigurationError, PluginError
from tidings._models import ProviderInfo

__all__ = ["ProviderEntry", "ProviderHooks", "get_plugin_manager", "providers", "register", "unregister"]

PROVIDER_HOOKS = (
    "provider_info",
    "make_auth",
    "start",
    "initial_cursor",
    "fetch_page",
    "parse_event",
    "checkpoint",
    "is_terminal",
    "verify_webhook",
    "parse_webhook",
)
OBSERVER_HOOKS = (
    "watch_started",
    "page_read",
    "fetch_retried",
    "page_committed",
    "subjects_open",
    "record_dead_lettered",
    "stream_ended",
    "watch_finished",
)

_pm: pluggy.PluginManager | None = None
_TRACING = bool(os.environ.get("TIDINGS_TRACE_PLUGINS"))
_distributions: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    only = os.environ.get("TIDINGS_LOAD_PLUGINS")
    blocked = {n.strip() for n in os.environ.get("TIDINGS_BLOCK_PLUGINS", "").split(",") if n.strip()}
    wanted = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group="tidings"):
        if ep.name in blocked or (wanted is not None and ep.name not in wanted):
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} failed to import: {exc}") from exc
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            _distributions[ep.name] = (ep.dist.metadata["Name"], ep.dist.version)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading installed plugins on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("tidings")
        pm.add_hookspecs(hookspecs)
        if os.environ.get("TIDINGS_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            pm.enable_tracing()
        _load_entry_points(pm)
        _check(pm)
        _pm = pm
    return _pm


def _check(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc


def register(plugin: Any, name: str | None = None) -> Any:
    """Register a plugin in-process (a module, an object, or a class to instantiate).

    Use it in an application or a notebook cell; undo it with :func:`unregister`.

    :return: the registered object.
    """
    pm = get_plugin_manager()
    if inspect.isclass(plugin):
        plugin = plugin()
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise PluginError(str(exc)) from exc
    try:
        _check(pm)
    except PluginError:
        pm.unregister(plugin)
        raise
    return plugin


def unregister(plugin: Any) -> None:
    """Undo :func:`register` (by the object, or by the name it was registered under)."""
    pm = get_plugin_manager()
    if isinstance(plugin, str):
        pm.unregister(name=plugin)
    else:
        pm.unregister(plugin)


@attrs.frozen
class ProviderEntry:
    """An installed (or registered) provider."""

    info: ProviderInfo
    plugin: Any = attrs.field(repr=False)
    distribution: str | None
    version: str | None


def providers() -> dict[str, ProviderEntry]:
    """Every provider plugin, by provider name."""
    pm = get_plugin_manager()
    found: dict[str, ProviderEntry] = {}
    for impl in pm.hook.provider_info.get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        info = impl.function()
        if not isinstance(info, ProviderInfo):
            raise PluginError(
                f"plugin {pm.get_name(impl.plugin)!r}: provider_info must return tidings.ProviderInfo, "
                f"got {type(info).__name__}"
            )
        dist, version = _distributions.get(pm.get_name(impl.plugin) or "", (None, None))
        found[info.name] = ProviderEntry(info=info, plugin=impl.plugin, distribution=dist, version=version)
    return found


def provider(name: str) -> ProviderEntry:
    """The provider called ``name``, or a ConfigurationError listing the ones installed."""
    found = providers()
    if name not in found:
        names = ", ".join(sorted(found)) or "none"
        raise ConfigurationError(
            f"no provider called {name!r} is installed (installed: {names}); "
            f"install its plugin, for example `pip install tidings-{name}`"
        )
    return found[name]


def _direct(impl: pluggy.HookImpl) -> Callable[..., Any]:
    func = impl.function
    names = impl.argnames

    def call(**kwargs: Any) -> Any:
        return func(*[kwargs[n] for n in names])

    return call


@functools.cache
def _spec_names(hook: str) -> tuple[str, ...]:
    return tuple(inspect.signature(getattr(hookspecs, hook)).parameters)


def _positional(hook: str, impl: pluggy.HookImpl | None, caller: Callable[..., Any]) -> Callable[..., Any]:
    """A caller taking the hook's arguments by position, in the spec's order (the per-event hot path).

    With a single direct implementation it is the plugin's own function (or a lambda that drops the
    arguments it does not take); otherwise it maps the positions to keywords for pluggy.
    """
    spec_names = _spec_names(hook)
    if impl is None:
        return lambda *args: caller(**dict(zip(spec_names, args, strict=True)))
    if tuple(impl.argnames) == spec_names:
        return impl.function  # type: ignore[no-any-return]
    # spec and argument names are Python identifiers from code, not user input
    source = f"lambda {', '.join(spec_names)}: func({', '.join(impl.argnames)})"
    return eval(source, {"func": impl.function})  # type: ignore[no-any-return]


class ProviderHooks:
    """The hooks of one provider, reaching it and the cross-cutting plugins only."""

    def __init__(self, entry: ProviderEntry) -> None:
        pm = get_plugin_manager()
        self.entry = entry
        self.info = entry.info
        others = {p for e in providers().values() if (p := e.plugin) is not entry.plugin}
        self._callers: dict[str, Callable[..., Any]] = {}
        self._positional: dict[str, Callable[..., Any]] = {}
        self._direct: dict[str, pluggy.HookImpl] = {}
        for hook in PROVIDER_HOOKS:
            caller = pm.subset_hook_caller(hook, remove_plugins=others)
            impls = caller.get_hookimpls()
            only = impls[0] if len(impls) == 1 else None
            direct = only is not None and only.plugin is entry.plugin and not (only.wrapper or only.hookwrapper)
            if direct and not _TRACING:  # traced calls must go through pluggy to be seen
                self._callers[hook] = _direct(impls[0])
                self._positional[hook] = _positional(hook, impls[0], caller)
                self._direct[hook] = impls[0]
            elif any(not (i.wrapper or i.hookwrapper) for i in impls):  # a wrapper alone implements nothing
                self._callers[hook] = caller
                self._positional[hook] = _positional(hook, None, caller)
        self._observers = {h: getattr(pm.hook, h) for h in OBSERVER_HOOKS if getattr(pm.hook, h).get_hookimpls()}

    def implements(self, hook: str) -> bool:
        return hook in self._callers

    def caller(self, hook: str) -> Callable[..., Any]:
        """The callable for ``hook`` (keyword arguments); PluginError if no plugin implements it."""
        try:
            return self._callers[hook]
        except KeyError:
            raise PluginError(
                f"provider plugin {self.info.name!r} does not implement the required hook {hook!r}",
                provider=self.info.name,
            ) from None

    def positional(self, hook: str) -> Callable[..., Any]:
        """Like :meth:`caller`, taking the arguments by position in the spec's order (faster)."""
        self.caller(hook)  # a clear PluginError if nobody implements it
        return self._positional[hook]

    def bound(self, hook: str, ctx: Any) -> Callable[..., Any]:
        """Like :meth:`positional` with ``ctx`` given: takes the spec's other arguments by position.

        The per-event hot path: for a direct implementation that does not take ``ctx`` this is the
        plugin's own function (no wrapper at all); one that does gets a ``functools.partial``.
        """
        positional = self.positional(hook)
        impl = self._direct.get(hook)
        if impl is not None:
            spec_names = _spec_names(hook)
            if tuple(impl.argnames) == spec_names[1:]:
                return impl.function  # type: ignore[no-any-return]
            if tuple(impl.argnames) == spec_names:
                return functools.partial(impl.function, ctx)
        return functools.partial(positional, ctx)

    def plain(self, hook: str) -> bool:
        """True when only the provider implements ``hook``, with a plain (not ``async def``) function.

        Its results can then be taken as they come, a page at a time (an odd one that returns an
        awaitable anyway is caught by the caller's type check).
        """
        impl = self._direct.get(hook)
        return impl is not None and not inspect.iscoroutinefunction(impl.function)

    def observes(self, hook: str) -> bool:
        return hook in self._observers

    async def observe(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin implementing it, awaiting any awaitable results."""
        caller = self._observers.get(hook)
        if caller is not None:
            for result in caller(**kwargs):
                if inspect.isawaitable(result):
                    await result


async def await_me_maybe(value: Any) -> Any:
    """Await ``value`` if it is awaitable (hooks may return either)."""
    if inspect.isawaitable(value):
        return await value
    return value

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

import contextlib
import difflib
import functools
import importlib.metadata
import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from tidings import hookspecs
from tidings._errors import ConfigurationError, PluginError
from tidings._models import ProviderInfo

__all__ = ["ProviderEntry", "ProviderHooks", "get_plugin_manager", "providers", "register", "unregister"]

_log = logging.getLogger("tidings")

PROVIDER_HOOKS = (
    "provider_info",
    "make_auth",
    "start",
    "initial_cursor",
    "fetch_page",
    "parse_event",
    "checkpoint",
    "checkpoint_page",
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
            _trace(pm)
        _load_entry_points(pm)
        _check(pm)
        _pm = pm
    return _pm


def _redacted(name: str, value: Any) -> Any:
    """A hook argument as the trace shows it: secrets (a token, a secret-looking param) as ``***``."""
    from tidings._context import WatchContext, redacted, secret_name

    if secret_name(name):
        return "***" if value is not None else None
    if isinstance(value, Mapping):
        return redacted(value)
    if isinstance(value, WatchContext):
        return f"<watch {value.watch!r} stream {value.stream.key!r}>"
    return value


def _trace(pm: pluggy.PluginManager) -> None:
    """``TIDINGS_TRACE_PLUGINS=1``: each hook call and its arguments on stderr, secrets redacted."""

    def before(hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        args = ", ".join(f"{k}={_redacted(k, v)!r}" for k, v in kwargs.items())
        print(f"tidings trace: {hook}({args}) -> {[pm.get_name(i.plugin) for i in impls]}", file=sys.stderr)

    def after(outcome: Any, hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        return None

    pm.add_hookcall_monitoring(before, after)


def _check(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from exc


def register(plugin: Any, name: str | None = None) -> Any:
    """Register a plugin in-process (a module, an object, or a class to instantiate).

    Use it in an application or a notebook cell; undo it with :func:`unregister`.
    Registering a provider whose name is taken (a cell run again) replaces the
    old one and logs a one-line notice.

    :return: the registered object.
    """
    pm = get_plugin_manager()
    if inspect.isclass(plugin):
        plugin = plugin()
    _replace_same_provider(pm, plugin, name)
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


def _replace_same_provider(pm: pluggy.PluginManager, plugin: Any, name: str | None) -> None:
    """Re-running a notebook cell that registers a provider replaces the old copy (with a notice)."""
    old = pm.get_plugin(name) if name is not None else None
    provider_name = _provider_name(plugin)
    if old is None and provider_name is not None:
        with contextlib.suppress(PluginError):
            entry = providers().get(provider_name)
            old = entry.plugin if entry is not None else None
    if old is None or old is plugin:
        return
    pm.unregister(old)
    what = f"provider {provider_name!r}" if provider_name else f"plugin {name!r}"
    _log.warning("tidings: %s registered again; the new one replaces the old", what)


def _provider_name(plugin: Any) -> str | None:
    info_hook = getattr(plugin, "provider_info", None)
    if not callable(info_hook):
        return None
    try:
        info = info_hook()
    except Exception:
        return None  # registering reports it
    return info.name if isinstance(info, ProviderInfo) else None


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


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get("TIDINGS_BLOCK_PLUGINS", "").split(",") if n.strip()}


def provider(name: str) -> ProviderEntry:
    """The provider called ``name``, or a ConfigurationError saying why there is none and what to do."""
    found = providers()
    if name in found:
        return found[name]
    names = ", ".join(sorted(found)) or "none"
    if name in _blocked():
        raise ConfigurationError(
            f"provider {name!r} is blocked by TIDINGS_BLOCK_PLUGINS; remove it from that variable to use it"
        )
    installed = {ep.name for ep in importlib.metadata.entry_points(group="tidings")}
    if name in installed:
        raise ConfigurationError(f"provider {name!r} is installed but not loaded: add it to TIDINGS_LOAD_PLUGINS")
    close = difflib.get_close_matches(name, list(found), n=1, cutoff=0.6)
    if close:
        raise ConfigurationError(f"no provider called {name!r}: did you mean {close[0]!r}? (installed: {names})")
    raise ConfigurationError(
        f"no provider called {name!r} is installed (installed: {names}); install the plugin that provides it"
    )


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

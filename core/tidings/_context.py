"""What a hook gets to know about the watch it serves."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from tidings._errors import ConfigurationError
from tidings._models import Stream

if TYPE_CHECKING:
    from tidings._http import HTTP

__all__ = ["WatchContext", "param"]


def param(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """One parameter's value from ``--param`` values: the last one if it was repeated, else ``default``.

    ``WatchContext.param`` in hooks that have a context; this in ``make_auth``, which gets the
    plain mapping (it runs before the HTTP client, and so the context, exists).
    """
    value = params.get(name, default)
    if isinstance(value, (list, tuple)):
        return value[-1] if value else default
    return value


async def _call_once(call: Callable[[], Any]) -> Any:
    """``ctx.retry`` of a context built by hand (tests): no retries."""
    result = call()
    if inspect.isawaitable(result):
        result = await result
    return result


@attrs.frozen(slots=True)
class WatchContext:
    """The watch a hook call serves.

    :ivar provider: the provider name.
    :ivar watch: the watch name (the key its cursors are stored under).
    :ivar stream: the stream this call is about (``Stream("")`` for watch-level calls).
    :ivar params: provider parameters (``--param KEY=VALUE``; a repeated key gives a list).
    :ivar base_url: the configured base URL (no trailing slash).
    :ivar http: the HTTP client to use; it keeps to ``base_url``'s host.
    :ivar after: where a new watch starts (``--after``), or None.
    :ivar page_size: a page size the user asked for, or None for the provider's default.
    :ivar overlap: seconds re-read before a saved time position, for late events.
    :ivar webhook_url: the public URL where this watch's webhook receiver can be reached, or
        None: a plugin's ``start`` puts it in the request that asks the provider for webhooks.
    :ivar retry: ``await ctx.retry(call)`` calls ``call()`` (and awaits its result) again on
        :class:`tidings.TransientError`, with the watch's backoff and retry budget: use it for
        single requests inside ``start`` that must not be repeated as a whole.
    :ivar options: the provider's options, typed as it declared them (``ProviderInfo.params``),
        built once per watch; None for a provider that declares none (read ``params`` then).
    :ivar push: ``push(stream_key, record=None)`` hands a record (a webhook's) to a running
        stream of this watch, or with no record makes it poll at once; False if no such stream runs.
    """

    provider: str
    watch: str
    stream: Stream
    params: Mapping[str, Any]
    base_url: str
    http: HTTP = attrs.field(repr=False)
    after: datetime | None = None
    page_size: int | None = None
    overlap: float = 5.0
    webhook_url: str | None = None
    push: Callable[..., bool] = attrs.field(default=lambda stream, record=None: False, repr=False)
    retry: Callable[[Callable[[], Any]], Awaitable[Any]] = attrs.field(factory=lambda: _call_once, repr=False)
    options: Any = None

    def param(self, name: str, default: Any = None, *, required: bool = False) -> Any:
        """One parameter's value (the last one if it was repeated)."""
        if required and name not in self.params:
            raise ConfigurationError(f"missing parameter: add --param {name}=VALUE", provider=self.provider)
        return param(self.params, name, default)

    def param_list(self, name: str) -> list[Any]:
        """Every value a parameter was given, as a list (empty when absent)."""
        value = self.params.get(name)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]

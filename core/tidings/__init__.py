"""tidings: follow asynchronous provider APIs until their results arrive.

The public surface is what ``__all__`` lists; everything in a module whose name
starts with ``_`` is private.
"""

from __future__ import annotations

from tidings._auth import ApiKeyHeader, BasicAuth, BearerToken, OAuth2ClientCredentials
from tidings._context import WatchContext, param
from tidings._convert import converter, format_time, parse_time, rename_fields, require, structure
from tidings._errors import (
    AuthenticationError,
    ConfigurationError,
    ForeignHostError,
    HandlerError,
    ParseError,
    PluginError,
    ProviderError,
    ProviderHTTPError,
    ResponseTooLarge,
    RetriesExhausted,
    StoreError,
    TidingsError,
    TransientError,
)
from tidings._http import HTTP, parse_retry_after
from tidings._models import DeadLetter, Event, EventList, Page, Param, ProviderInfo, Push, Stream
from tidings._plugins import ProviderEntry, providers, register, unregister
from tidings._store import CheckpointStore, EventSink, MemoryStore, SQLiteStore
from tidings._sync import collect, run_sync
from tidings._watch import Watch, WatchStats, follow_all
from tidings.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "HTTP",
    "ApiKeyHeader",
    "AuthenticationError",
    "BasicAuth",
    "BearerToken",
    "CheckpointStore",
    "ConfigurationError",
    "DeadLetter",
    "Event",
    "EventList",
    "EventSink",
    "ForeignHostError",
    "HandlerError",
    "MemoryStore",
    "OAuth2ClientCredentials",
    "Page",
    "Param",
    "ParseError",
    "PluginError",
    "ProviderEntry",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderInfo",
    "Push",
    "ResponseTooLarge",
    "RetriesExhausted",
    "SQLiteStore",
    "StoreError",
    "Stream",
    "TidingsError",
    "TransientError",
    "Watch",
    "WatchContext",
    "WatchStats",
    "__version__",
    "collect",
    "converter",
    "follow_all",
    "format_time",
    "hookimpl",
    "param",
    "parse_retry_after",
    "parse_time",
    "providers",
    "register",
    "rename_fields",
    "require",
    "run_sync",
    "structure",
    "unregister",
]

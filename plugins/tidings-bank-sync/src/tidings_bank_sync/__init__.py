"""tidings-bank-sync: follow a bank account synchronisation through its event queue.

Installed, it registers the ``bank-sync`` provider through the ``tidings`` entry point.
"""

from __future__ import annotations

from tidings_bank_sync.models import (
    Account,
    Channel,
    QueueCursor,
    QueueEvent,
    QueueSubscription,
    Resource,
    SyncAllResponse,
)
from tidings_bank_sync.plugin import DEFAULT_BASE_URL, TERMINAL_TYPES, TOKEN_URL
from tidings_bank_sync.queue import connection_of, parse_queue_body

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "TERMINAL_TYPES",
    "TOKEN_URL",
    "Account",
    "Channel",
    "QueueCursor",
    "QueueEvent",
    "QueueSubscription",
    "Resource",
    "SyncAllResponse",
    "__version__",
    "connection_of",
    "parse_queue_body",
]

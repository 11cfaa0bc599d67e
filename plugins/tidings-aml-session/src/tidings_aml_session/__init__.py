"""tidings-aml-session: follow BankID AML organisation sessions until their results arrive.

Install it beside ``tidings`` and the ``aml-session`` provider is found through
its entry point. The functions below fetch a session's results from a handler.
"""

from __future__ import annotations

from tidings_aml_session._session import (
    COUNTRIES,
    Paths,
    fetch_json,
    fetch_report,
    fetch_state,
    save_json,
    save_report,
    start_session,
    state_records,
    webhooks_field,
)
from tidings_aml_session.emulator import AmlSessionEmulator
from tidings_aml_session.models import (
    OrganizationResult,
    SessionCreated,
    SessionCursor,
    SessionEvent,
    SessionState,
    WebhookNotice,
)
from tidings_aml_session.plugin import event_id

__version__ = "0.1.0"

__all__ = [
    "COUNTRIES",
    "AmlSessionEmulator",
    "OrganizationResult",
    "Paths",
    "SessionCreated",
    "SessionCursor",
    "SessionEvent",
    "SessionState",
    "WebhookNotice",
    "__version__",
    "event_id",
    "fetch_json",
    "fetch_report",
    "fetch_state",
    "save_json",
    "save_report",
    "start_session",
    "state_records",
    "webhooks_field",
]

"""tidings-financing-activity: the trade financing validation activity feed as a tidings provider."""

from tidings_financing_activity.auth import FinancingOAuth, default_token_url
from tidings_financing_activity.emulator import FinancingActivityEmulator
from tidings_financing_activity.models import (
    DOCUMENT_CHECK,
    FINANCING_CHECK,
    ActivityCursor,
    ActivityEvent,
    ActivityPage,
    EventDetail,
    Link,
)
from tidings_financing_activity.plugin import NAME, EnrichedRecord, format_after

__all__ = [
    "DOCUMENT_CHECK",
    "FINANCING_CHECK",
    "NAME",
    "ActivityCursor",
    "ActivityEvent",
    "ActivityPage",
    "EnrichedRecord",
    "EventDetail",
    "FinancingActivityEmulator",
    "FinancingOAuth",
    "Link",
    "default_token_url",
    "format_after",
]

"""The weather-alerts provider: a feed read with ``GET /alerts?after_seq=N&limit=L``.

Every alert carries a ``seq`` that only grows. The cursor is the greatest ``seq``
delivered; a page asks for the alerts after it. ``has_more`` says another page
is ready at once. An ``{"error": {...}}`` body inside a 200 is retried.
"""

from __future__ import annotations

from typing import Any

import attrs
import tidings
from tidings import Event, Page, Param, ProviderInfo, WatchContext, hookimpl

from tidings_weather_alerts.models import Alert, AlertsCursor

PROVIDER = "weather-alerts"
DEFAULT_PAGE_SIZE = 50


def _make_emulator() -> Any:
    from tidings_weather_alerts.emulator import WeatherAlertsEmulator  # needs tidings[sandbox]

    return WeatherAlertsEmulator()


@hookimpl
def provider_info() -> ProviderInfo:
    return ProviderInfo(
        name=PROVIDER,
        kind="feed",
        description="Weather Alerts API: every alert issued, as a feed",
        cursor_type=AlertsCursor,
        params=(Param("area", "only alerts for this area code", repeatable=True),),
        emulator=_make_emulator,
        default_base_url="https://api.weather-alerts.example/v1",
    )


@hookimpl
async def fetch_page(ctx: WatchContext, cursor: AlertsCursor) -> Page:
    params: dict[str, Any] = {"after_seq": cursor.last_seq, "limit": ctx.page_size or DEFAULT_PAGE_SIZE}
    if ctx.param_list("area"):
        params["area"] = ctx.param_list("area")
    body = await ctx.http.get_json("alerts", params=params)
    if not isinstance(body, dict) or "error" in body:
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        raise tidings.TransientError(f"the API answered an error inside a 200 ({code}): retrying",
                                     provider=PROVIDER, code=code)
    return Page(records=body.get("alerts", []), more=bool(body.get("has_more")))


@hookimpl
def parse_event(record: Any) -> Event:
    tidings.require(record, ("seq", "id", "area", "severity", "event", "issued_at"), provider=PROVIDER,
                    id_field="id")
    try:
        issued_at = tidings.parse_time(record["issued_at"])
    except ValueError as exc:
        raise tidings.ParseError(f"bad issued_at: {exc}", provider=PROVIDER, record_id=str(record["id"])) from None
    return Event.make(
        provider=PROVIDER,
        id=str(record["id"]),
        subject=str(record["area"]),
        type=str(record["event"]),
        status=str(record["severity"]),
        occurred_at=issued_at,
        raw=record,
        record_type=Alert,
    )


@hookimpl
def checkpoint(cursor: AlertsCursor, event: Event) -> AlertsCursor:
    seq = int(event.raw["seq"])
    return attrs.evolve(cursor, last_seq=seq) if seq > cursor.last_seq else cursor

"""An emulator of the Weather Alerts API, for tests, the demo and ``tidings follow --sandbox``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tidings import format_time
from tidings.sandbox import Emulator, Scenario

AREAS = ("NO-03", "NO-46", "NO-50")
EVENTS = ("wind", "rain", "snow", "flood")
SEVERITIES = ("minor", "moderate", "severe")


class WeatherAlertsEmulator(Emulator):
    """``GET /v1/alerts?after_seq=&limit=&area=``: alerts after a sequence number, oldest first."""

    provider = "weather-alerts"
    base_path = "/v1"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alerts: list[dict[str, Any]] = []

    def add_alert(self, area: str, event: str, severity: str) -> dict[str, Any]:
        seq = len(self.alerts) + 1
        alert = {
            "seq": seq,
            "id": f"wa-{seq:05d}",
            "area": area,
            "severity": severity,
            "event": event,
            "headline": f"{severity.capitalize()} {event} warning for {area}",
            "issued_at": format_time(self.clock.now()),
        }
        self.alerts.append(alert)
        return alert

    def routes(self) -> list[Route]:
        return [Route(f"{self.base_path}/alerts", self._alerts, methods=["GET"])]

    async def _alerts(self, request: Request) -> Response:
        if not self.authorized(request):
            return self.unauthorized()
        try:
            after = int(request.query_params.get("after_seq", 0))
            limit = min(int(request.query_params.get("limit", 50)), 500)
        except ValueError:
            return JSONResponse({"error": {"code": "BAD_REQUEST"}}, status_code=400)
        areas = set(request.query_params.getlist("area"))
        found = [a for a in self.alerts if a["seq"] > after and (not areas or a["area"] in areas)]
        return JSONResponse({"alerts": found[:limit], "has_more": len(found) > limit})

    def scenario(self, size: int = 20) -> Scenario:
        made = [
            self.add_alert(self.random.choice(AREAS), self.random.choice(EVENTS), self.random.choice(SEVERITIES))
            for _ in range(size)
        ]
        return Scenario(expected_ids=frozenset(a["id"] for a in made), page_size=4)

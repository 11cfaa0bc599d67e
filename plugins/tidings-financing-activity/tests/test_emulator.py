"""The emulator keeps to PROVIDERS.md and the seed (so it is a fair judge of the plugin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tidings_financing_activity import FinancingActivityEmulator

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def client(emulator: FinancingActivityEmulator, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=emulator.transport(),
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {token or emulator.token}"},
    )


async def test_after_inclusive_or_not_and_links_like_the_seed(emulator: FinancingActivityEmulator) -> None:
    at = T0 - timedelta(seconds=5)
    for _ in range(3):
        emulator.add_event(at)
    async with client(emulator) as http:
        body = (await http.get("/activity", params={"after": "2024-05-01T11:59:55.000Z", "limit": 2})).json()
        assert len(body["events"]) == 2
        assert body["links"][0] == {
            "href": "https://developer.swift.com/api/v1/activity?limit=2,offset=0", "rel": "self", "type": "GET"
        }
        emulator.inclusive_after = False
        body = (await http.get("/activity", params={"after": "2024-05-01T11:59:55.000Z"})).json()
        assert body["events"] == []


async def test_bad_query_is_400_and_bad_token_401(emulator: FinancingActivityEmulator) -> None:
    async with client(emulator) as http:
        assert (await http.get("/activity", params={"after": "soon"})).status_code == 400
        assert (await http.get("/activity", params={"limit": "0"})).status_code == 400
    async with client(emulator, token="nope") as http:
        assert (await http.get("/activity")).status_code == 401


async def test_registered_financing_result_arrives_after_a_delay(emulator: FinancingActivityEmulator) -> None:
    data_set = emulator.register(duplicate=True, delay=3)
    async with client(emulator) as http:
        assert (await http.get("/activity")).json()["events"] == []
        emulator.clock.advance(3)
        (event,) = (await http.get("/activity")).json()["events"]
    assert event["data_set_identification"] == data_set
    assert [d["status"] for d in event["event_details"]] == ["REDU", "EXCT"]


async def test_token_endpoint(emulator: FinancingActivityEmulator) -> None:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://x") as http:
        good = await http.post("/oauth/token", json={"grant_type": "client_credentials", "client_id": "sandbox-client",
                                                      "client_secret": "sandbox-secret"})
        assert good.json()["expires_in"] == 43200 and good.json()["token_type"] == "Bearer"
        bad = await http.post("/oauth/token", json={"grant_type": "client_credentials", "client_id": "sandbox-client",
                                                     "client_secret": "x"})
        assert bad.status_code == 401
        token = good.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/v1/activity", headers=headers)).status_code == 200
        emulator.clock.advance(43200)
        assert (await http.get("/v1/activity", headers=headers)).status_code == 401

"""Optional enrichment: the record behind each event, beside (never inside) the raw event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import tidings
from tidings_financing_activity import FinancingActivityEmulator

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


async def test_enrichment_is_off_by_default(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.add_event(T0 - timedelta(seconds=1))
    (event,) = await read_all(make_watch(emulator))
    assert event.record.follow_up is None
    assert all(path.startswith("/v1/activity") for _, path in emulator.requests)


async def test_enrich_status_fetches_each_request_status(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    body = emulator.add_event(T0 - timedelta(seconds=1), status="DFIN", match_type="EXCT")
    served = json.dumps(body, sort_keys=True)
    (event,) = await read_all(make_watch(emulator, params={"enrich": "status"}))
    follow_up = event.record.follow_up
    assert set(follow_up) == set(body["request_identifications"])
    assert all(v["status"] == "DFIN" for v in follow_up.values())
    assert json.dumps(event.raw, sort_keys=True) == served  # raw stays the event exactly as received
    assert event.to_json()["raw"] == body
    paths = [path for _, path in emulator.requests]
    assert sum(p.startswith("/v1/status?request_identification=") for p in paths) == 2


async def test_enrich_financing_validation_requests(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    body = emulator.add_event(T0 - timedelta(seconds=1), status="FNCD")
    (event,) = await read_all(make_watch(emulator, params={"enrich": "financing-validation-requests"}))
    rows = event.record.follow_up["financing_validation_requests"]
    assert {r["data_set_identification"] for r in rows} == {body["data_set_identification"]}


async def test_unknown_request_is_no_follow_up_and_bad_choice_is_an_error(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    body = emulator.add_event(T0 - timedelta(seconds=1))
    emulator.requests_by_id.clear()
    (event,) = await read_all(make_watch(emulator, params={"enrich": "status"}))
    assert set(event.record.follow_up.values()) == {None}
    assert event.raw == body
    with pytest.raises(tidings.ConfigurationError, match="enrich"):
        await read_all(make_watch(emulator, params={"enrich": "everything"}))

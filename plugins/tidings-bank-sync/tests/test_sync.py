"""Following syncs end to end against the emulator: outcomes, all connections,
LIST_ACCOUNTS chaining into ALL, existing queues, destructive queues, auth."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import httpx
import pytest
import tidings
from tidings.sandbox import Clock
from tidings_bank_sync.emulator import BankSyncEmulator
from tidings_bank_sync.models import QueueEvent

pytestmark = pytest.mark.anyio


def emulator(**options: Any) -> BankSyncEmulator:
    return BankSyncEmulator(seed=3, clock=Clock(speed=20), **options)


def watch(emu: BankSyncEmulator, params: dict[str, Any], **options: Any) -> tidings.Watch:
    settings: dict[str, Any] = {
        "base_url": emu.base_url, "token": emu.token, "transport": emu.transport(), "params": params,
        "interval": 0.01, "max_interval": 0.05, "retry_base_wait": 0.01, "retry_max_wait": 0.05,
    }
    settings.update(options)
    return tidings.Watch("bank-sync", **settings)


async def follow(emu: BankSyncEmulator, params: dict[str, Any], **options: Any) -> tuple[tidings.Watch, list]:
    w = watch(emu, params, **options)
    with anyio.fail_after(20):
        events = await w.collect()
    return w, events


def ended(w: tidings.Watch) -> bool:
    return w.stats.streams_ended == w.stats.streams == 1


def terminals(events: Sequence[tidings.Event]) -> dict[str | None, tidings.Event]:
    """The first terminal event of each subject."""
    found: dict[str | None, tidings.Event] = {}
    for e in events:
        if e.terminal:
            found.setdefault(e.subject, e)
    return found


def assert_numeric_order(events: Sequence[tidings.Event]) -> None:
    ids = [int(e.id) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("mode", [{}, {"destructive": True}, {"destructive": True, "max_batch": 2},
                                  {"newest_first": True}])
async def test_one_connection_synced_to_success(mode: dict[str, Any]) -> None:
    emu = emulator(**mode)
    cid = emu.add_connection(outcome="SUCCESS")
    w, events = await follow(emu, {"connection_id": cid})
    assert ended(w)
    last = events[-1]
    assert (last.type, last.status, last.subject, last.terminal) == ("SYNC_ALL_SUCCESS", "SUCCESS", cid, True)
    assert [e for e in events if e.terminal] == [last]
    assert_numeric_order(events)
    assert any(int(e.id) >= 10 for e in events) and any(int(e.id) < 10 for e in events)  # "9" < "10" as numbers
    assert {e.id for e in events} == set(emu.delivered[next(iter(emu.queues))])
    # the queue was subscribed before the sync was triggered
    posts = [p for m, p in emu.requests if m == "POST"]
    assert posts == ["/v2.1/queues", f"/v2.1/connections/{cid}/synchronize"]
    record = last.record
    assert isinstance(record, QueueEvent)
    assert {c.status for c in record.resource.channels} == {"SUCCESS", "EMPTY"}
    assert all(c.last_end_date is not None and c.last_end_date.tzinfo is not None for c in record.resource.channels)


async def test_connection_whose_final_event_says_failed() -> None:
    emu = emulator()
    cid = emu.add_connection(outcome="FAILED")
    w, events = await follow(emu, {"connection_id": cid})
    assert ended(w)
    assert (events[-1].type, events[-1].status, events[-1].terminal) == ("SYNC_ALL_SUCCESS", "FAILED", True)
    assert [c.status for c in events[-1].record.resource.channels] == ["USER_ACTION_REQUIRED", "TOKEN_EXPIRED"]


async def test_partial_success_is_an_outcome_too() -> None:
    emu = emulator()
    cid = emu.add_connection(outcome="PARTIAL_SUCCESS")
    _, events = await follow(emu, {"connection_id": cid})
    assert (events[-1].type, events[-1].status) == ("SYNC_ALL_SUCCESS", "PARTIAL_SUCCESS")


@pytest.mark.parametrize("shape", ["channel", "link", "nested", "connection"])
async def test_connection_ending_in_auth_failed(shape: str) -> None:
    emu = emulator(channel_shape=shape)
    other = emu.add_connection(outcome="SUCCESS")
    cid = emu.add_connection(outcome="AUTH_FAILED")
    w, events = await follow(emu, {"connection_id": cid})
    assert ended(w)
    failed = [e for e in events if e.type == "AUTH_FAILED"]
    assert len(failed) == 1 and failed[0].terminal and failed[0].subject == cid
    assert failed[0].status == ("RUNNING" if shape == "connection" else "TOKEN_EXPIRED")
    assert other not in {e.subject for e in events}
    assert failed[0].record.resource.channel_definition_id == "8700"


async def test_auth_failed_need_not_end_the_watch() -> None:
    emu = emulator()
    cid = emu.add_connection(outcome="AUTH_FAILED")
    w, events = await follow(emu, {"connection_id": cid, "end_on_auth_failed": "false"})
    assert ended(w)
    assert not [e for e in events if e.type == "AUTH_FAILED" and e.terminal]
    assert (events[-1].type, events[-1].status) == ("SYNC_ALL_SUCCESS", "FAILED")


@pytest.mark.parametrize("destructive", [False, True])
async def test_sync_of_all_connections_ends_when_each_has_ended(destructive: bool) -> None:
    emu = emulator(destructive=destructive, step=1.0)
    outcomes = {emu.add_connection(outcome=o): o for o in ("SUCCESS", "FAILED", "AUTH_FAILED", "PARTIAL_SUCCESS")}
    w, events = await follow(emu, {"connection_id": "all"})
    assert ended(w)
    ends = terminals(events)
    assert set(ends) == set(outcomes)
    for cid, outcome in outcomes.items():
        if outcome == "AUTH_FAILED":
            assert ends[cid].type == "AUTH_FAILED"
        else:
            assert (ends[cid].type, ends[cid].status) == ("SYNC_ALL_SUCCESS", outcome)
    # the watch did not stop at the first connection that ended
    first_end = min(events.index(e) for e in ends.values())
    assert first_end < len(events) - 1
    assert max(events.index(e) for e in ends.values()) >= len(events) - 2  # ended with the last one
    assert ("POST", "/v2.1/connections/synchronize") in emu.requests


async def test_list_accounts_chains_into_all_and_the_watch_ends_at_its_end() -> None:
    emu = emulator()
    cid = emu.add_connection(outcome="SUCCESS", accounts=3)
    w, events = await follow(emu, {"connection_id": cid, "type": "LIST_ACCOUNTS"})
    assert ended(w)
    assert emu.syncs == [(cid, "LIST_ACCOUNTS")]
    assert ("POST", f"/v2.1/connections/{cid}/synchronize?type=LIST_ACCOUNTS") in emu.requests
    types = [e.type for e in events]
    listed = [i for i, t in enumerate(types) if t == "LIST_ACCOUNTS_SUCCESS"]
    assert len(listed) == 2  # one account list per channel
    assert not any(events[i].terminal for i in listed)
    phases = [e.raw["resource"].get("sync_type") for e in events if e.type == "SYNC_STARTED"]
    assert phases == ["LIST_ACCOUNTS", "ALL"]
    assert types.index("SYNC_STARTED", listed[-1]) > listed[-1]  # the ALL phase comes after the list
    assert types[-1] == "SYNC_ALL_SUCCESS" and events[-1].terminal
    accounts = events[listed[0]].record.resource.accounts
    assert [a.id for a in accounts] == [f"{cid}-1", f"{cid}-2", f"{cid}-3"]


async def test_following_an_existing_queue_for_named_connections() -> None:
    emu = emulator()
    a, b = emu.add_connection(), emu.add_connection(outcome="FAILED")
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://bank-sync.sandbox",
                                 headers={"authorization": f"Bearer {emu.token}"}) as client:
        queue_id = (await client.post("/v2.1/queues")).json()["id"]
        for cid in (a, b):
            assert (await client.post(f"/v2.1/connections/{cid}/synchronize")).status_code == 204
    w, events = await follow(emu, {"queue_id": queue_id, "connection_id": [a, b]})
    assert ended(w)
    assert set(terminals(events)) == {a, b}
    assert [p for m, p in emu.requests if m == "POST"].count("/v2.1/queues") == 1  # the plugin subscribed none


async def test_a_trigger_whose_answer_was_lost_is_not_an_error() -> None:
    emu = emulator(on_busy="conflict")
    cid = emu.add_connection()
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://bank-sync.sandbox",
                                 headers={"authorization": f"Bearer {emu.token}"}) as client:
        queue_id = (await client.post("/v2.1/queues")).json()["id"]
    emu.faults.writes = True
    emu.faults.fail_next("reset")  # the sync starts, then the connection breaks
    w, _ = await follow(emu, {"queue_id": queue_id, "connection_id": cid, "trigger": "true"})
    assert ended(w) and emu.syncs == [(cid, "ALL")]
    assert emu.faults.served == {"reset": 1}


async def test_stop_mid_page_on_a_destructive_queue_loses_nothing() -> None:
    emu = emulator(destructive=True)
    cid = emu.add_connection()
    emu.add_connection()
    store = tidings.MemoryStore()
    first: list[tidings.Event] = []
    w = watch(emu, {"connection_id": "all"}, store=store)

    def handler(event: tidings.Event) -> None:
        first.append(event)
        if len(first) == 4:
            w.stop()

    await anyio.sleep(0.3)  # nothing yet: the sync has not been triggered
    with anyio.fail_after(20):
        await w.run(handler)
    with anyio.fail_after(20):
        second = await watch(emu, {"connection_id": "all"}, store=store).collect()
    ids = [e.id for e in first + second]
    assert sorted(ids, key=int) == sorted((i for q in emu.delivered.values() for i in q), key=int)
    assert len(set(ids)) == len(ids)
    assert cid in terminals(second) or cid in terminals(first)


async def test_client_credentials_against_the_token_url() -> None:
    emu = emulator()
    cid = emu.add_connection()
    params = {"connection_id": cid, "client_id": emu.client_id, "client_secret": emu.client_secret,
              "token_url": "http://auth.sandbox/token"}
    w, events = await follow(emu, params, token=None)
    assert ended(w) and events[-1].type == "SYNC_ALL_SUCCESS"
    assert ("POST", "/token") in emu.requests


async def test_wrong_client_secret_is_an_authentication_error() -> None:
    emu = emulator()
    cid = emu.add_connection()
    params = {"connection_id": cid, "client_id": emu.client_id, "client_secret": "nope",
              "token_url": "http://auth.sandbox/token"}
    with pytest.raises(tidings.AuthenticationError):
        await follow(emu, params, token=None)


@pytest.mark.parametrize(
    "params",
    [{}, {"connection_id": ["all", "12"]}, {"connection_id": "12", "type": "SOME"},
     {"connection_id": "all", "queue_id": "q"}, {"connection_id": "all", "type": "ALL"}],
)
async def test_bad_parameters_are_configuration_errors(params: dict[str, Any]) -> None:
    emu = emulator()
    with pytest.raises(tidings.ConfigurationError):
        await follow(emu, params)

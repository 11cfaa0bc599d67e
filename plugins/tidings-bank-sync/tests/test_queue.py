"""The queue reading rules: numeric ids, pending records, subjects of channel events, bad records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
import tidings
from tidings.sandbox import Clock
from tidings_bank_sync.emulator import BankSyncEmulator
from tidings_bank_sync.models import QueueCursor
from tidings_bank_sync.plugin import checkpoint, is_terminal, parse_event
from tidings_bank_sync.queue import MAX_RANGES, add_done, connection_of, is_done, select_new


def ev(i: Any, **extra: Any) -> dict[str, Any]:
    return {"id": i, "event_type": "SYNC_STARTED", "creation_date": 1528112097,
            "resource": {"id": "42", "status": "RUNNING"}, **extra}


def test_ids_are_compared_as_numbers_and_sorted() -> None:
    records = [ev("11"), ev("8"), ev("10"), ev("9")]
    fresh, newest, _, news = select_new(records, add_done(QueueCursor(), range(1, 10)))
    assert [r["id"] for r in fresh] == ["10", "11"]  # as text, "8" and "9" would sort after "10"
    assert newest == 11 and news
    fresh, newest, _, _ = select_new(records, QueueCursor())
    assert [r["id"] for r in fresh] == ["8", "9", "10", "11"]


def test_late_ids_however_far_below_are_new_and_done_ones_are_left_out() -> None:
    records = [ev("3"), ev("8"), ev("9"), ev("10"), ev("11"), ev("60")]
    cursor = add_done(QueueCursor(), [*range(4, 12), 60])
    assert cursor.done == ((4, 11), (60, 60)) and cursor.last_id == 60
    fresh, _, _, news = select_new(records, cursor)
    assert [r["id"] for r in fresh] == ["3"] and news
    fresh, _, _, news = select_new(records[1:], cursor)
    assert fresh == [] and not news
    assert not select_new([ev("9")], QueueCursor(last_id=11, set_aside=(9,)))[3]


def test_done_ranges_merge_and_stay_bounded() -> None:
    cursor = add_done(QueueCursor(), [5, 7, 6, 1])
    assert cursor.done == ((1, 1), (5, 7)) and cursor.floor is None
    assert is_done(cursor, 6) and not is_done(cursor, 4) and not is_done(cursor, 8)
    sparse = add_done(QueueCursor(), range(1, 4 * MAX_RANGES, 2))
    assert len(sparse.done) == MAX_RANGES and sparse.floor is not None
    assert is_done(sparse, 1) and is_done(sparse, 2)  # forgotten ranges fold into the floor
    assert is_done(QueueCursor(last_id=9), 9) and not is_done(QueueCursor(last_id=9), 10)  # saved without ranges


def test_pending_records_come_first_without_duplicates() -> None:
    cursor = add_done(QueueCursor(pending=(ev("10"), ev("11"))), range(1, 10))
    fresh, _, _, _ = select_new([ev("11"), ev("12")], cursor)  # a destructive queue no longer holds 10
    assert [r["id"] for r in fresh] == ["10", "11", "12"]


def test_records_without_a_numeric_id_are_handed_over_once() -> None:
    odd = {"event_type": "X"}
    fresh, newest, prints, _ = select_new([odd, ev("7")], QueueCursor())
    assert fresh == [ev("7"), odd] and newest == 7 and len(prints) == 1
    again, _, _, _ = select_new([odd, ev("7")], add_done(QueueCursor(unplaced=prints), [7]))
    assert again == []


def test_checkpoint_keeps_the_numeric_maximum(ctx: tidings.WatchContext) -> None:
    event = parse_event(ctx=ctx, record=ev("9"))
    assert checkpoint(ctx=ctx, cursor=QueueCursor(last_id=10), event=event).last_id == 10
    assert checkpoint(ctx=ctx, cursor=QueueCursor(last_id=8), event=event).last_id == 9
    assert checkpoint(ctx=ctx, cursor=QueueCursor(), event=event).last_id == 9


@pytest.mark.parametrize(
    ("record", "followed", "subject"),
    [
        (ev("1"), None, "42"),
        (ev("1", resource_type="CHANNEL", resource={"id": "c", "channel_definition_id": "8701",
                                                    "connection_id": 42}), None, "42"),
        (ev("1", resource_type="CHANNEL", resource={"id": "c", "connection": "/connections/42"}), None, "42"),
        (ev("1", resource_type="CHANNEL", resource={"id": "c", "connection": {"id": "42"}}), None, "42"),
        (ev("1", resource_type="CHANNEL", connection_id="42", resource={"id": "c"}), None, "42"),
        (ev("1", resource_type="CHANNEL", resource={"channel_definition_id": "8701"}), {"42"}, "42"),
        (ev("1", resource_type="CHANNEL", resource={"id": "c", "channel_definition_id": "8701"}), {"1", "2"}, "c"),
    ],
)
def test_the_subject_is_the_connection(record: dict[str, Any], followed: set[str] | None, subject: str) -> None:
    assert connection_of(record, followed) == subject


def test_missing_field_names_the_field_and_the_event(ctx: tidings.WatchContext) -> None:
    record = ev("31")
    del record["resource"]
    with pytest.raises(tidings.ParseError, match=r"record '31': missing required field 'resource'"):
        parse_event(ctx=ctx, record=record)
    with pytest.raises(tidings.ParseError, match=r"record '32': bad creation_date"):
        parse_event(ctx=ctx, record=ev("32", creation_date="yesterday"))


def test_terminal_types(ctx: tidings.WatchContext) -> None:
    def terminal(event_type: str) -> bool:
        return is_terminal(ctx=ctx, event=parse_event(ctx=ctx, record=ev("1", event_type=event_type)))

    assert terminal("SYNC_ALL_SUCCESS") and terminal("AUTH_FAILED")
    assert not terminal("LIST_ACCOUNTS_SUCCESS") and not terminal("SYNC_STARTED")


def test_extra_fields_are_kept_in_raw(ctx: tidings.WatchContext) -> None:
    record = ev("5", novel={"x": 1})
    event = parse_event(ctx=ctx, record=record)
    assert event.raw["novel"] == {"x": 1}
    assert event.record.creation_date == datetime.fromtimestamp(1528112097, tz=UTC)
    as_text = parse_event(ctx=ctx, record=ev("6", creation_date="1528112097"))
    assert as_text.occurred_at == datetime.fromtimestamp(1528112097, tz=UTC)


@pytest.mark.anyio
async def test_bad_records_on_a_keeping_queue_are_set_aside_once() -> None:
    emu = BankSyncEmulator(seed=1, clock=Clock(speed=20))
    cid = emu.add_connection()
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://bank-sync.sandbox",
                                 headers={"authorization": f"Bearer {emu.token}"}) as client:
        queue_id = (await client.post("/v2.1/queues")).json()["id"]
    emu.queues[queue_id] += [{"id": "1", "event_type": "SYNC_STARTED"}, {"event_type": "NO_ID", "resource": {}}]
    w = tidings.Watch("bank-sync", base_url=emu.base_url, token=emu.token, transport=emu.transport(),
                      params={"queue_id": queue_id, "connection_id": cid, "trigger": "yes"},
                      interval=0.01, max_interval=0.05)
    with anyio.fail_after(20):
        events = await w.collect()
    letters = await w.dead_letters()
    assert sorted(letter.reason for letter in letters) == [
        "[bank-sync] missing required field 'id'",
        "[bank-sync] record '1': missing required field 'creation_date'",
    ]
    assert events[-1].type == "SYNC_ALL_SUCCESS"
    assert w.stats.pages > 3  # polled several times, yet each bad record was set aside once


@pytest.mark.anyio
async def test_a_late_event_with_a_smaller_id_is_caught() -> None:
    emu = BankSyncEmulator(seed=1)
    emu.queues["q"] = [ev("40")]
    emu.delivered["q"] = ["40"]
    w = tidings.Watch("bank-sync", base_url=emu.base_url, token=emu.token, transport=emu.transport(),
                      params={"queue_id": "q", "connection_id": "42"},
                      interval=0.01, max_interval=0.02)
    got: list[str] = []
    first = anyio.Event()

    def handler(event: tidings.Event) -> None:
        got.append(event.id)
        first.set()

    async def late() -> None:
        await first.wait()
        emu.queues["q"] += [ev("41"), ev("9"), ev("42", event_type="SYNC_ALL_SUCCESS")]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(late)
            await w.run(handler)
    assert got == ["40", "9", "41", "42"]

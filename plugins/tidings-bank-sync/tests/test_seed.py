"""The seed's JSON examples, verbatim: the event example is not valid JSON (a comma is
missing after ``"expires": 1528106353``) and must fail with its position; corrected, it
parses into the typed models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tidings
from tidings_bank_sync import QueueEvent, SyncAllResponse, parse_queue_body
from tidings_bank_sync.plugin import parse_event
from tidings_bank_sync.queue import connection_id_from_link

DATA = Path(__file__).parent / "data"
SEED = (DATA / "bank-sync-queue.txt").read_text()


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@pytest.mark.parametrize("name", ["queue-event.seed.json", "sync-all.seed.json"])
def test_examples_are_copied_verbatim_from_the_seed(name: str) -> None:
    text = (DATA / name).read_text()
    assert text in SEED


def test_seed_event_example_fails_with_line_and_column() -> None:
    text = (DATA / "queue-event.seed.json").read_text()
    with pytest.raises(tidings.ParseError) as info:
        parse_queue_body(text)
    # the line after '"expires": 1528106353' is the 14th; the decoder stops at its first column
    line = text.splitlines().index('"status": "SUCCESS",') + 1
    assert line == 14
    message = str(info.value)
    assert "Expecting ',' delimiter" in message
    assert f"line {line}, column 1" in message
    assert info.value.provider == "bank-sync"
    with pytest.raises(json.JSONDecodeError) as decoder:
        json.loads(text)
    assert (decoder.value.lineno, decoder.value.colno) == (14, 1)


def test_seed_event_example_bytes_fail_the_same_way() -> None:
    with pytest.raises(tidings.ParseError, match=r"line 14, column 1"):
        parse_queue_body((DATA / "queue-event.seed.json").read_bytes())


def test_corrected_event_example_parses_into_the_typed_models() -> None:
    records = parse_queue_body((DATA / "queue-event.corrected.json").read_text())
    assert len(records) == 1  # one event object is accepted as a queue of one
    record = records[0]
    typed = tidings.structure(record, QueueEvent, provider="bank-sync", record_id=record["id"])
    assert typed.id == "20"
    assert typed.event_type == "SYNC_ALL_SUCCESS"
    assert typed.resource_type == "CONNECTION"
    assert typed.creation_date == utc(1528112097)
    assert typed.resource.id == "{connection_id}"
    assert typed.resource.status == "SUCCESS"
    assert typed.resource.provider_id == "200"
    assert typed.resource.creation_date == utc(0)
    first, second = typed.resource.channels
    assert first.channel_definition_id == "8701"
    assert first.expires == utc(1528106353)
    assert first.expires.tzinfo is UTC
    assert first.last_success_date == utc(1528112084)
    assert first.last_end_date == utc(1528112084)
    assert second.channel_definition_id == "8700"
    assert second.expires is None


def test_corrected_event_example_is_a_terminal_event(ctx: tidings.WatchContext) -> None:
    record = parse_queue_body((DATA / "queue-event.corrected.json").read_text())[0]
    event = parse_event(ctx=ctx, record=record)
    assert (event.id, event.type, event.status, event.subject) == ("20", "SYNC_ALL_SUCCESS", "SUCCESS",
                                                                    "{connection_id}")
    assert event.occurred_at == utc(1528112097)
    assert event.raw is record
    assert isinstance(event.record, QueueEvent)


def test_seed_sync_all_example_is_not_json_and_its_correction_parses() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads((DATA / "sync-all.seed.json").read_text())
    body = json.loads((DATA / "sync-all.corrected.json").read_text())
    typed = tidings.structure(body, SyncAllResponse)
    assert [connection_id_from_link(link) for link in typed.connection_links] == [
        "{connection_id_1}",
        "{connection_id_2}",
    ]

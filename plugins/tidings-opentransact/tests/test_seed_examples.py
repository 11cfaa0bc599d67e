"""The seed's JSON examples, copied into tests/data, parse verbatim (see data/activities-list.README.txt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tidings
from tidings_opentransact import Activity, ActivityList, PageLinks, PageMeta, ResourceIdentifier
from tidings_opentransact.plugin import parse_event

DATA = Path(__file__).parent / "data"
SEED_ID = "4c72784e-fb2a-4858-8067-95b6e36d54c0"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_single_activity_example_becomes_an_event() -> None:
    record = load("activity.json")
    event = parse_event(record)
    assert event.provider == "opentransact"
    assert event.id == SEED_ID
    assert event.type == "activity.created"
    assert event.subject == f"profiles/{SEED_ID}"
    assert event.occurred_at == datetime(2022, 6, 21, 23, 34, 4, tzinfo=UTC)
    assert event.raw is record
    activity = event.record
    assert isinstance(activity, Activity)
    assert activity.type == "activities"
    assert activity.attributes.action == "created"
    assert activity.attributes.previous == {} and activity.attributes.current == {} and activity.attributes.diff == {}
    assert activity.attributes.updated_at == event.occurred_at
    assert activity.subject == ResourceIdentifier("profiles", SEED_ID)
    assert activity.relationships.application is not None
    assert activity.relationships.application.data == ResourceIdentifier("applications", SEED_ID)


def test_list_example_parses_as_a_document_with_meta_and_links() -> None:
    page = tidings.structure(load("activities-list.json"), ActivityList)
    assert len(page.data) == 1
    assert page.data[0].id == SEED_ID
    assert page.data[0].attributes.created_at is None  # the seed's list items have no created-at
    assert page.meta == PageMeta(current_page=1, page_count=2, count=38)
    assert isinstance(page.links, PageLinks)
    assert page.links.self_ is not None and page.links.self_.endswith("page%5Bnumber%5D=1&page%5Bsize%5D=30")
    assert page.links.next is not None and "page%5Bnumber%5D=2" in page.links.next
    assert page.links.prev is None


def test_list_example_item_without_created_at_is_a_parse_error_naming_field_and_id() -> None:
    item = load("activities-list.json")["data"][0]
    with pytest.raises(tidings.ParseError) as info:
        parse_event(item)
    assert info.value.record_id == SEED_ID
    assert "attributes.created-at" in str(info.value)
    assert SEED_ID in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda r: r.pop("id"), "'id'"),
        (lambda r: r.pop("attributes"), "'attributes'"),
        (lambda r: r["attributes"].pop("action"), "attributes.action"),
        (lambda r: r["attributes"].update({"created-at": "yesterday"}), "attributes.created-at"),
    ],
)
def test_broken_records_name_what_is_wrong(mutate: Any, named: str) -> None:
    record = load("activity.json")
    mutate(record)
    with pytest.raises(tidings.ParseError, match=named):
        parse_event(record)


def test_unknown_fields_are_tolerated_and_kept_in_raw() -> None:
    record = load("activity.json")
    record["attributes"]["new-field"] = 1
    record["relationships"]["subject"]["data"] = {"type": "transactions", "id": "t-1"}
    record["links"] = {"self": "x"}
    event = parse_event(record)
    assert event.raw["attributes"]["new-field"] == 1
    assert event.subject == "transactions/t-1"
    assert event.record.attributes.action == "created"


def test_typed_record_of_an_event_is_built_lazily_with_a_readable_error() -> None:
    record = load("activity.json")
    record["relationships"]["subject"] = {"data": {"type": "profiles"}}  # no id: the typed record fails
    event = parse_event(record)
    assert event.subject is None
    with pytest.raises(tidings.ParseError, match="id"):
        event.record  # noqa: B018

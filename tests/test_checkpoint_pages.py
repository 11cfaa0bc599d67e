"""Every shipped plugin's ``checkpoint_page`` gives what folding its ``checkpoint`` over the page gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tidings import Event
from tidings_aml_session import plugin as aml
from tidings_aml_session.models import SessionCursor
from tidings_financing_activity import plugin as financing
from tidings_financing_activity.models import ActivityCursor as FinancingCursor
from tidings_opentransact import plugin as opentransact
from tidings_opentransact.models import ActivityCursor as OpenTransactCursor
from tidings_request_status import plugin as request_status
from tidings_request_status.models import InnerRequest, RequestStatusCursor

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def events(record_type: Any = None) -> list[Event]:
    spec = [("a", 3, "x", "OK"), ("b", 1, "y", "FAIL"), ("a", 3, "x", "OK"), ("c", 5, "x", "DONE"),
            ("d", 2, None, None)]
    return [Event.make("p", i, subject, "t", status, T0 + timedelta(seconds=s), {}, False, record_type)
            for i, s, subject, status in spec]


@pytest.mark.parametrize(
    ("module", "cursors", "record_type"),
    [
        (aml, [SessionCursor(), SessionCursor(delivered=("b", "z"))], None),
        (financing, [FinancingCursor(), FinancingCursor(poll_newest=T0 + timedelta(seconds=9))], None),
        (opentransact, [OpenTransactCursor(), OpenTransactCursor(newest=T0 + timedelta(seconds=4))], None),
        (request_status, [RequestStatusCursor(), RequestStatusCursor(statuses={"x": "OLD", "q": "KEEP"})],
         InnerRequest),
    ],
)
def test_checkpoint_page_is_checkpoint_folded(module: Any, cursors: list[Any], record_type: Any) -> None:
    page = events(record_type)
    for cursor in cursors:
        folded = cursor
        for event in page:
            folded = module.checkpoint(folded, event)
        assert module.checkpoint_page(cursor, page) == folded
        for end in range(1, len(page)):  # the delivered part of a page a consumer left
            part = cursor
            for event in page[:end]:
                part = module.checkpoint(part, event)
            assert module.checkpoint_page(cursor, page[:end]) == part

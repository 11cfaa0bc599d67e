from __future__ import annotations

from typing import Any

import httpx
import pytest
import tidings
from tidings.testing import context_for


@pytest.fixture
def ctx() -> Any:
    """A watch context for calling hooks directly (no network)."""
    http = tidings.HTTP(provider="bank-sync", base_url="https://api.test/v2.1",
                        transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    return context_for("bank-sync", {}, http=http, stream=tidings.Stream("q1", frozenset({"42"})), watch="t")

"""What the plugin sends (filters, media type, auth) and how it reads JSON:API errors."""

from __future__ import annotations

import json
import types
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import tidings
import tidings_opentransact
from tidings_opentransact import (
    OpenTransactAuthenticationError,
    OpenTransactError,
    OpenTransactForbidden,
    OpenTransactInvalidParameter,
    OpenTransactNotFound,
)
from tidings_opentransact.emulator import OpenTransactEmulator

pytestmark = pytest.mark.anyio

EMPTY_PAGE = {"data": [], "meta": {"current-page": 1, "page-count": 1, "count": 0}, "links": {}}


def queries(emulator: OpenTransactEmulator) -> list[list[tuple[str, str]]]:
    return [parse_qsl(urlsplit(path).query) for _, path in emulator.requests if "/activities" in path]


def mock(*responses: httpx.Response) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering ``responses`` in turn (the last one for ever), recording the requests."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return httpx.MockTransport(handler), seen


def errors(status: int, code: str | None, title: str, detail: str, **extra: Any) -> httpx.Response:
    error = {"status": str(status), "title": title, "detail": detail, **extra}
    if code is not None:
        error["code"] = code
    return httpx.Response(status, json={"errors": [error]}, headers={"content-type": "application/vnd.api+json"})


async def read(transport: httpx.AsyncBaseTransport, **options: Any) -> list[tidings.Event]:
    watch = tidings.Watch(
        "opentransact", base_url="https://api.opentransact.com/v1", token="t0k3n", transport=transport,
        interval=0.01, max_interval=0.05, retry_base_wait=0.01, retry_max_wait=0.05, **options,
    )
    return await watch.collect()


async def test_filters_media_type_page_and_bearer_are_sent(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(arrivals_while_paging=0)
    emulator.scenario(12)
    params = {"metadata.batch": "1", "subject-type": ["transactions"], "action": "updated"}
    events = await make_watch(emulator, params=params, page_size=2).collect()
    wanted = {a["id"] for a in emulator.activities
              if a["attributes"]["metadata"]["batch"] == "1" and a["attributes"]["action"] == "updated"
              and a["relationships"]["subject"]["data"]["type"] == "transactions"}
    assert {e.id for e in events} == wanted
    first = dict(queries(emulator)[0])
    assert first == {
        "page[number]": "1",
        "page[size]": "2",
        "filter[metadata][batch]": "1",
        "filter[subject-type]": "transactions",
        "filter[action]": "updated",
    }


async def test_every_documented_filter_is_passed_through() -> None:
    transport, seen = mock(httpx.Response(200, json=EMPTY_PAGE))
    params = {"subject-id": "s", "subject-type": "transactions", "action": "created", "profile-id": "p",
              "application-id": "a", "metadata.order-ref": "42"}
    await read(transport, params=params)
    sent = dict(seen[0].url.params.multi_items())
    assert sent == {
        "page[number]": "1", "page[size]": "30",
        "filter[subject-id]": "s", "filter[subject-type]": "transactions", "filter[action]": "created",
        "filter[profile-id]": "p", "filter[application-id]": "a", "filter[metadata][order-ref]": "42",
    }
    assert seen[0].headers["accept"] == "application/vnd.api+json"
    assert seen[0].headers["authorization"] == "Bearer t0k3n"


async def test_basic_auth_sends_the_key_as_the_seed_shows(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(auth="basic", arrivals_while_paging=0)
    emulator.scenario(5)
    events = await make_watch(emulator, params={"auth": "basic"}).collect()
    assert len(events) == 5
    with pytest.raises(OpenTransactAuthenticationError, match="check the token"):
        await make_watch(emulator).collect()  # Bearer where Basic is wanted


@pytest.mark.parametrize(
    "params",
    [{"auth": "digest"}, {"action": ["created", "updated"]}, {"metadata.": "x"}, {"overlap": "-1"}, {"overlap": "x"}],
)
async def test_bad_configuration_is_refused_before_anything_is_sent(params: dict[str, Any]) -> None:
    transport, seen = mock(httpx.Response(200, json=EMPTY_PAGE))
    with pytest.raises(tidings.ConfigurationError):
        await read(transport, params=params)
    assert seen == []


async def test_a_wrong_token_is_an_authentication_error_with_code_title_and_detail(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(arrivals_while_paging=0)
    emulator.scenario(3)
    with pytest.raises(tidings.AuthenticationError) as info:
        await make_watch(emulator, token="wrong").collect()
    error = info.value
    assert isinstance(error, OpenTransactAuthenticationError)
    assert (error.code, error.title, error.status_code) == ("10003", "Invalid token", 401)
    assert error.detail and "check the token" in str(error)


async def test_a_refused_filter_names_the_parameter(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(arrivals_while_paging=0)
    with pytest.raises(OpenTransactInvalidParameter) as info:
        await make_watch(emulator, params={"action": "archived"}).collect()
    assert info.value.code == "10010" and info.value.parameter == "filter[action]"
    assert "filter[action]" in str(info.value)


async def test_the_media_type_is_required_by_the_emulator() -> None:
    emulator = OpenTransactEmulator(arrivals_while_paging=0)
    async with httpx.AsyncClient(transport=emulator.transport()) as client:
        answer = await client.get(f"{emulator.base_url}/activities", headers={"authorization": "Bearer sandbox-token"})
    assert answer.status_code == 406 and answer.json()["errors"][0]["title"] == "Not Acceptable"


@pytest.mark.parametrize(
    ("answer", "kind", "code", "words"),
    [
        (errors(401, "10002", "Missing header", "no Authorization header"), OpenTransactAuthenticationError,
         "10002", "check the token"),
        (errors(401, "10004", "Token expired", "the token expired"), OpenTransactAuthenticationError,
         "10004", "check the token"),
        (errors(400, "10005", "Bad token", "malformed"), OpenTransactAuthenticationError, "10005", "check the token"),
        (errors(403, "10015", "Forbidden", "not allowed"), OpenTransactForbidden, "10015", "permissions"),
        (errors(404, "10001", "Not found", "no such route"), OpenTransactNotFound, "10001", "base URL"),
        (errors(422, "10012", "Invalid filter", "bad value", source={"parameter": "filter[profile-id]"}),
         OpenTransactInvalidParameter, "10012", "filter[profile-id]"),
        (errors(422, "10006", "Invalid parameter", "unknown"), OpenTransactInvalidParameter, "10006", "a parameter"),
        (errors(409, "10099", "Conflict", "odd"), OpenTransactError, "10099", "HTTP 409"),
        (httpx.Response(200, json={"errors": [{"status": "401", "code": "10003", "title": "Invalid token"}]}),
         OpenTransactAuthenticationError, "10003", "check the token"),
    ],
)
async def test_error_documents_become_typed_errors(
    answer: httpx.Response, kind: type[Exception], code: str, words: str
) -> None:
    transport, _ = mock(answer)
    with pytest.raises(kind) as info:
        await read(transport, max_retries=0)
    error = info.value
    assert isinstance(error, tidings.ProviderError)
    assert error.code == code and words in str(error)
    assert error.title is not None  # type: ignore[attr-defined]
    if code in ("10002", "10003", "10004", "10005", "10015"):
        assert isinstance(error, tidings.AuthenticationError)


async def test_a_4xx_without_an_error_document_falls_back_to_the_core() -> None:
    transport, _ = mock(httpx.Response(401, text="nope"), httpx.Response(418, text="teapot"))
    with pytest.raises(tidings.AuthenticationError):
        await read(transport, max_retries=0)
    transport, _ = mock(httpx.Response(418, text="teapot"))
    with pytest.raises(tidings.ProviderHTTPError):
        await read(transport, max_retries=0)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_stay_transient_whatever_their_body(status: int) -> None:
    page = {"data": [json.loads(json.dumps(ACTIVITY))], "meta": {"current-page": 1, "page-count": 1, "count": 1}}
    transport, seen = mock(errors(status, "10003", "Busy", "later"), httpx.Response(200, json=page))
    events = await read(transport)
    assert [e.id for e in events] == ["a-1"]
    assert len(seen) >= 2


async def test_a_body_that_is_not_a_list_document_is_a_provider_error() -> None:
    transport, _ = mock(httpx.Response(200, json={"hello": "world"}))
    with pytest.raises(tidings.ProviderError, match="JSON:API"):
        await read(transport)


async def test_without_meta_the_plugin_pages_by_links_then_by_a_full_page() -> None:
    one = {"data": [ACTIVITY], "links": {"next": "https://elsewhere.example/v1/activities?page%5Bnumber%5D=2"}}
    two = {"data": [dict(ACTIVITY, id="a-2")]}
    transport, seen = mock(httpx.Response(200, json=one), httpx.Response(200, json=two),
                           httpx.Response(200, json={"data": []}))
    events = await read(transport, page_size=1)
    assert [e.id for e in events][:2] == ["a-1", "a-2"]
    assert [r.url.params["page[number]"] for r in seen][:3] == ["1", "2", "3"]
    assert all(r.url.host == "api.opentransact.com" for r in seen)


async def test_page_count_as_text_and_an_endless_next_link_still_end_the_poll() -> None:
    texts = {"data": [ACTIVITY], "meta": {"current-page": "1", "page-count": "1", "count": "1"}}
    transport, seen = mock(httpx.Response(200, json=texts))
    assert [e.id for e in await read(transport)] == ["a-1"]
    assert {r.url.params["page[number]"] for r in seen} == {"1"}
    endless = {"data": [], "links": {"next": "https://api.opentransact.com/v1/activities?page%5Bnumber%5D=9"}}
    transport, seen = mock(httpx.Response(200, json=endless))
    assert await read(transport) == []
    assert {r.url.params["page[number]"] for r in seen} == {"1"}


def test_all_is_complete() -> None:
    public = {
        n for n in dir(tidings_opentransact)
        if not n.startswith("_") and n != "annotations"
        and not isinstance(getattr(tidings_opentransact, n), types.ModuleType)
    }
    assert public <= set(tidings_opentransact.__all__)
    for name in tidings_opentransact.__all__:
        assert getattr(tidings_opentransact, name) is not None


def test_provider_info_describes_every_param() -> None:
    info = tidings.providers()["opentransact"].info
    assert info.kind == "feed" and info.default_base_url == "https://api.opentransact.com/v1"
    assert {p.name for p in info.params} == {
        "auth", "overlap", "metadata.KEY", "subject-id", "subject-type", "action", "profile-id", "application-id"
    }
    assert isinstance(info.emulator(), OpenTransactEmulator)  # type: ignore[misc]


ACTIVITY = {
    "type": "activities",
    "id": "a-1",
    "attributes": {"action": "updated", "previous": {}, "current": {}, "diff": {}, "metadata": {},
                   "created-at": "2024-05-01T10:00:00Z", "updated-at": "2024-05-01T10:00:00Z"},
    "relationships": {"subject": {"data": {"type": "transactions", "id": "t-1"}}},
}

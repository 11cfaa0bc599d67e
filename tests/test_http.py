"""The HTTP client: one host, capped bodies, auth that refreshes, secrets never shown."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
import tidings
from tidings import HTTP

from tiny import TinyServer, make_watch

pytestmark = pytest.mark.anyio
SECRET = "tok-5ecr3t-value-123"


async def test_links_off_the_configured_host_are_refused() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    http = HTTP(provider="p", base_url="https://api.example.com/v1", transport=transport)
    assert str(http.url("activity")) == "https://api.example.com/v1/activity"
    assert str(http.url("https://api.example.com/v1/activity?offset=2")).endswith("offset=2")
    with pytest.raises(tidings.ForeignHostError, match=r"developer\.swift\.com"):
        http.url("https://developer.swift.com/api/v1/activity?limit=20,offset=40")
    await http.aclose()


async def test_a_body_over_the_cap_is_refused() -> None:
    big = json.dumps({"x": "y" * 5000}).encode()
    http = HTTP(provider="p", base_url="https://a.test", max_body_bytes=1000,
                transport=httpx.MockTransport(lambda r: httpx.Response(200, content=big)))
    with pytest.raises(tidings.ResponseTooLarge, match="over the cap of 1000"):
        await http.get_json("x")
    await http.aclose()


@pytest.mark.parametrize(("status", "error"), [(401, tidings.AuthenticationError), (403, tidings.AuthenticationError),
                                               (404, tidings.ProviderHTTPError), (503, tidings.TransientError),
                                               (429, tidings.TransientError)])
async def test_statuses_are_sorted_into_final_or_retryable(status: int, error: type) -> None:
    http = HTTP(provider="p", base_url="https://a.test",
                transport=httpx.MockTransport(lambda r: httpx.Response(status, headers={"Retry-After": "7"})))
    with pytest.raises(error) as info:
        await http.get_json("x")
    if status == 429:
        assert info.value.retry_after == 7
    await http.aclose()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert tidings.parse_retry_after("3") == 3
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert 25 < tidings.parse_retry_after(format_datetime(later, usegmt=True)) <= 30  # type: ignore[operator]
    assert tidings.parse_retry_after("soon") is None


async def test_a_wrong_token_is_a_clear_error_without_the_token(
    tiny_feed: object, server: TinyServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.token = "the-right-one"
    watch = make_watch(server, token=SECRET)
    with pytest.raises(tidings.AuthenticationError) as info:
        await watch.collect()
    assert "check the token" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(watch), caplog.text):
        assert SECRET not in text


def test_auth_reprs_hide_secrets() -> None:
    for auth in (tidings.BearerToken(SECRET), tidings.BasicAuth("u", SECRET), tidings.BasicAuth(api_key=SECRET),
                 tidings.ApiKeyHeader(SECRET), tidings.OAuth2ClientCredentials("https://a.test/t", "id", SECRET)):
        assert SECRET not in repr(auth) and SECRET not in str(auth)


def test_urls_in_errors_lose_secrets() -> None:
    err = tidings.ProviderError("x", url="https://user:pw@a.test/p?access_token=abc&page=2")
    assert "pw" not in str(err) and "abc" not in str(err) and "page=2" in str(err)


class TokenServer:
    """Issues tokens that expire by request count, and an API that wants a live one."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.issued: list[str] = []
        self.live: set[str] = set()
        self.expires_in = expires_in
        self.fail_token_with: list[int] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            body = json.loads(request.content)
            if self.fail_token_with:
                return httpx.Response(self.fail_token_with.pop(0), headers={"Retry-After": "0"})
            if body["client_secret"] != SECRET or body["grant_type"] != "client_credentials":
                return httpx.Response(401, json={"error": "invalid_client"})
            token = f"t{len(self.issued)}"
            self.issued.append(token)
            self.live = {token}
            body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            return httpx.Response(200, json=body)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.live:
            return httpx.Response(401)
        return httpx.Response(200, json={"ok": True})


def oauth_http(server: TokenServer, **kwargs: object) -> HTTP:
    url = "https://auth.a.test/oauth/token"
    auth = tidings.OAuth2ClientCredentials(url, "client", SECRET, audience="api", **kwargs)  # type: ignore[arg-type]
    return HTTP(provider="p", base_url="https://api.a.test", auth=auth, transport=httpx.MockTransport(server.handler))


async def test_oauth_fetches_once_then_refreshes_once_on_a_401() -> None:
    server = TokenServer()
    http = oauth_http(server)
    assert await http.get_json("x") == {"ok": True}
    assert await http.get_json("x") == {"ok": True}
    assert server.issued == ["t0"]
    server.live = set()  # the provider revoked it (expired early)
    assert await http.get_json("x") == {"ok": True}
    assert server.issued == ["t0", "t1"]
    await http.aclose()


async def test_oauth_refreshes_before_expiry() -> None:
    server = TokenServer(expires_in=0)
    http = oauth_http(server, leeway=60)  # expired at once: fetch before every use
    await http.get_json("x")
    await http.get_json("x")
    assert server.issued == ["t0", "t1"]
    await http.aclose()


async def test_a_short_lived_token_is_used_for_half_its_life() -> None:
    server = TokenServer(expires_in=30)
    http = oauth_http(server, leeway=60)  # leeway longer than the life: capped at 15 s
    await http.get_json("x")
    await http.get_json("x")
    assert server.issued == ["t0"]
    await http.aclose()


async def test_oauth_refused_credentials_and_a_busy_token_endpoint() -> None:
    server = TokenServer()
    bad = HTTP(provider="p", base_url="https://api.a.test",
               auth=tidings.OAuth2ClientCredentials("https://auth.a.test/oauth/token", "client", "wrong"),
               transport=httpx.MockTransport(server.handler))
    with pytest.raises(tidings.AuthenticationError, match="check the client id and secret"):
        await bad.get_json("x")
    server.fail_token_with = [503]
    with pytest.raises(tidings.TransientError):
        await oauth_http(server).get_json("x")

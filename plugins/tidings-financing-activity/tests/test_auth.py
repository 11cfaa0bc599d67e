"""OAuth2 client credentials against the emulator's token endpoint, static tokens, and secrets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import tidings
from tidings_financing_activity import FinancingActivityEmulator, FinancingOAuth, default_token_url
from tidings_financing_activity.plugin import make_auth

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
OAUTH = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


def token_requests(emulator: FinancingActivityEmulator) -> int:
    return sum(1 for method, path in emulator.requests if method == "POST" and path == "/oauth/token")


@pytest.mark.parametrize(
    ("api", "token"),
    [
        ("https://api.securefinancing.com/v1", "https://auth.securefinancing.com/oauth/token"),
        ("https://api.uat.securefinancing.com/v1/activity?x=1", "https://auth.uat.securefinancing.com/oauth/token"),
        ("http://127.0.0.1:8123/v1", "http://127.0.0.1:8123/oauth/token"),
    ],
)
def test_default_token_url(api: str, token: str) -> None:
    assert default_token_url(api) == token


def test_make_auth_chooses_oauth_only_with_a_client_id() -> None:
    assert make_auth(token="t", params={}) is None
    auth = make_auth(token=None, params={**OAUTH, "audience": "aud", "token_url": "https://auth.x/oauth/token"})
    assert isinstance(auth, FinancingOAuth)
    assert (auth.token_url, auth.audience) == ("https://auth.x/oauth/token", "aud")
    assert "sandbox-secret" not in repr(auth)
    with pytest.raises(tidings.ConfigurationError, match="client_secret"):
        make_auth(token=None, params={"client_id": "c"})


@pytest.mark.anyio
async def test_oauth_token_from_the_emulators_own_host(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.audience = "securefinancing"
    expected = {emulator.add_event(T0 - timedelta(seconds=s))["event_identification"] for s in (3, 2, 1)}
    watch = make_watch(emulator, token=None, params={**OAUTH, "audience": "securefinancing"}, page_size=2)
    assert {e.id for e in await read_all(watch)} == expected
    assert emulator.tokens_issued == 1
    assert token_requests(emulator) == 1


@pytest.mark.anyio
async def test_expired_token_is_refreshed_once_on_401_and_the_read_goes_on(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    auth = make_auth(token=None, params=OAUTH)
    store = tidings.MemoryStore()
    first = emulator.add_event(T0 - timedelta(seconds=2))["event_identification"]
    assert [e.id for e in await read_all(make_watch(emulator, auth=auth, store=store))] == [first]
    # the token expires by the emulator's clock; the client still believes it fresh
    emulator.clock.advance(emulator.token_ttl + 1)
    later = emulator.add_event(emulator.clock.now() - timedelta(seconds=1))["event_identification"]
    emulator.requests.clear()
    got = await read_all(make_watch(emulator, auth=auth, store=store))
    assert [e.id for e in got] == [later]
    assert emulator.tokens_issued == 2
    assert token_requests(emulator) == 1  # refreshed once, then the read went on
    statuses = [path for _, path in emulator.requests]
    assert statuses[0].startswith("/v1/activity") and statuses[1] == "/oauth/token"


@pytest.mark.anyio
async def test_token_endpoint_fault_is_retried(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.faults.fail_next("503")  # the first request is the token request
    event = emulator.add_event(T0 - timedelta(seconds=1))["event_identification"]
    watch = make_watch(emulator, token=None, params=OAUTH)
    assert [e.id for e in await read_all(watch)] == [event]
    assert watch.stats.retries == 1


@pytest.mark.anyio
async def test_wrong_static_token_ends_with_a_clear_error_without_the_token(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.add_event(T0 - timedelta(seconds=1))
    secret = "wrong-token-0123456789"
    watch = make_watch(emulator, token=secret)
    with pytest.raises(tidings.AuthenticationError) as info:
        await read_all(watch)
    assert "401" in str(info.value) and "token" in str(info.value)
    # a finished watch drops its HTTP client: check the auth it builds instead
    for text in (str(info.value), repr(info.value), repr(watch), repr(await watch._make_auth())):
        assert secret not in text


@pytest.mark.anyio
async def test_wrong_client_secret_ends_with_a_clear_error_without_the_secret(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    secret = "not-the-secret-987654"
    watch = make_watch(emulator, token=None, params={"client_id": "sandbox-client", "client_secret": secret})
    with pytest.raises(tidings.AuthenticationError) as info:
        await read_all(watch)
    assert "client" in str(info.value)
    for text in (str(info.value), repr(info.value), repr(watch), repr(await watch._make_auth())):
        assert secret not in text


@pytest.mark.anyio
async def test_oauth_over_loopback(emulator: FinancingActivityEmulator, read_all: Any) -> None:
    event = emulator.add_event(T0 - timedelta(seconds=1))["event_identification"]
    with emulator.serve() as base_url:
        watch = tidings.Watch(
            "financing-activity", base_url=base_url, params=OAUTH, until_idle=True, interval=0.01, max_interval=0.05
        )
        assert [e.id for e in await read_all(watch)] == [event]
    assert emulator.tokens_issued == 1


def test_token_endpoint_quirks_are_transient_or_handled() -> None:

    auth = FinancingOAuth("https://auth.example/oauth/token", "c", "s")
    request = httpx.Request("POST", auth.token_url)
    with pytest.raises(tidings.TransientError, match="not JSON"):
        auth._accept(httpx.Response(200, content=b'{"access_token": "ab', request=request))
    # a short-lived token (10 s, below the 60 s leeway) is kept half its life, not refetched for every request
    auth._accept(httpx.Response(200, json={"access_token": "t", "expires_in": 10}, request=request))
    assert auth._fresh()

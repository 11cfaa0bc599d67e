"""Auth: a static bearer token, or OIDC client credentials (form-encoded, with the AML scopes)."""

from __future__ import annotations

import pytest
import tidings
from aml_session_helpers import OK_ORG, make_watch
from tidings_aml_session import plugin

pytestmark = pytest.mark.anyio


def test_make_auth_static_token_is_plain_bearer() -> None:
    assert plugin.make_auth("t0ken", {}) is None


def test_make_auth_client_credentials() -> None:
    params = {"client_id": "c", "client_secret": "very-secret-42", "token_url": "https://oidc.example/token"}
    auth = plugin.make_auth(None, params)
    assert isinstance(auth, tidings.OAuth2ClientCredentials)
    assert auth.form and auth.scope == "aml_organization/basic" and "very-secret-42" not in repr(auth)
    with pytest.raises(tidings.ConfigurationError, match="client_id, client_secret and token_url"):
        plugin.make_auth(None, {"client_id": "c"})


async def test_client_credentials_against_the_emulator(emulator) -> None:
    scope = "aml_organization/basic aml_organization/OFAC"
    params = {"country": "no", "identifier": OK_ORG, "client_id": emulator.client_id,
              "client_secret": emulator.client_secret, "token_url": f"{emulator.base_url}/oauth/token", "scope": scope}
    watch = make_watch(emulator, params, token=None)
    events = await watch.collect()
    assert [e.type for e in events] == ["JsonDataReady", "AllDone"]
    assert emulator.token_requests[0]["scope"] == scope
    assert emulator.token_requests[0]["grant_type"] == "client_credentials"


async def test_wrong_client_secret_is_an_authentication_error(emulator) -> None:
    params = {"country": "no", "identifier": OK_ORG, "client_id": emulator.client_id,
              "client_secret": "wrong", "token_url": f"{emulator.base_url}/oauth/token"}
    with pytest.raises(tidings.AuthenticationError):
        await make_watch(emulator, params, token=None).collect()
    assert emulator.sessions == {}

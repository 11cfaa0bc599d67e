"""The contract suite catches broken providers, and its failures name the rule that was broken."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import tidings
from tidings import hookimpl
from tidings.testing.contract import ContractBroken, ProviderContract

from tiny import TinyCursor, TinyEmulator, TinyFeed

pytestmark = pytest.mark.anyio
_counter = itertools.count()


class RandomIds(TinyFeed):
    """Gives every read of a record a new id: de-duplication cannot work."""

    name = "broken-ids"

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> tidings.Event:
        event = TinyFeed.parse_event(self, record)
        return tidings.Event(provider=self.name, id=f"{event.id}-{next(_counter)}", subject=event.subject,
                             type=event.type, status=None, occurred_at=event.occurred_at, raw=record)


class SkipsLastOfPage(TinyFeed):
    """Drops the last record of every full page: events are lost."""

    name = "broken-skips"

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> tidings.Page:
        page = await TinyFeed.fetch_page(self, ctx, cursor)
        records = page.records[:-1] if page.more else page.records
        return tidings.Page(records=records, more=page.more, advance=page.advance)

    @hookimpl
    def checkpoint(self, cursor: TinyCursor) -> TinyCursor:
        return cursor  # and never moves, so the overlap cannot rescue the dropped ones either


class GivesUpOnFaults(TinyFeed):
    """Turns every transient fault into a final error."""

    name = "broken-faults"

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> tidings.Page:
        try:
            return await TinyFeed.fetch_page(self, ctx, cursor)
        except tidings.TransientError as exc:
            raise tidings.ProviderError(f"gave up: {exc}", provider=self.name) from None


class LeaksToken(TinyFeed):
    """Puts the credentials in its error messages."""

    name = "broken-secrets"

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> tidings.Page:
        try:
            return await TinyFeed.fetch_page(self, ctx, cursor)
        except tidings.AuthenticationError as exc:
            header = exc.response.request.headers["authorization"] if exc.response is not None else ""
            raise tidings.AuthenticationError(f"refused {header}", provider=self.name) from None


class RejectsSome(TinyFeed):
    """Cannot parse a record the API really serves."""

    name = "broken-parse"

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> tidings.Event:
        if record["id"].endswith("7"):
            raise tidings.ParseError("unexpected shape", provider=self.name, record_id=record["id"])
        return TinyFeed.parse_event(self, record)


def _contract(provider: str) -> ProviderContract:
    class Broken(ProviderContract):
        emulator_class = TinyEmulator

    Broken.provider = provider
    Broken.timeout = 3.0
    return Broken()


@pytest.fixture
def register_broken() -> Iterator[None]:
    broken = (RandomIds, SkipsLastOfPage, GivesUpOnFaults, LeaksToken, RejectsSome)
    plugins = [tidings.register(cls()) for cls in broken]
    yield
    for plugin in plugins:
        tidings.unregister(plugin)


@pytest.mark.usefixtures("register_broken")
@pytest.mark.parametrize(
    ("provider", "rule", "test"),
    [
        ("broken-ids", "exactly-once", "test_contract_full_read_exactly_once"),
        ("broken-skips", "exactly-once", "test_contract_full_read_exactly_once"),
        ("broken-skips", "restart-resumes", "test_contract_restart_resumes"),
        ("broken-faults", "faults-survived", "test_contract_faults_survived"),
        ("broken-parse", "every-record-parses", "test_contract_every_record_parses"),
    ],
)
async def test_a_broken_provider_fails_the_rule_it_breaks(provider: str, rule: str, test: str) -> None:
    contract = _contract(provider)
    with pytest.raises((ContractBroken, tidings.TidingsError)) as info:
        await getattr(contract, test)()
    if isinstance(info.value, ContractBroken):
        assert f"contract rule {rule!r} broken" in str(info.value)
    else:  # a provider that gives up on faults fails with its own error, before the rule's check
        assert rule == "faults-survived"


@pytest.mark.usefixtures("register_broken")
async def test_leaking_the_token_fails_the_secrets_rule(caplog: pytest.LogCaptureFixture) -> None:
    contract = _contract("broken-secrets")
    with pytest.raises(ContractBroken, match="contract rule 'secrets-never-shown' broken: the token appears"):
        await contract.test_contract_secrets_never_shown(caplog)


@pytest.mark.usefixtures("register_broken")
async def test_the_same_rules_pass_for_the_sound_provider(tiny_feed: Any, caplog: pytest.LogCaptureFixture) -> None:
    contract = _contract("tiny-feed")
    await contract.test_contract_full_read_exactly_once()
    await contract.test_contract_secrets_never_shown(caplog)

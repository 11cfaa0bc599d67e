"""Typed provider options: declared once, structured when the Watch is built, refused in one message."""

from __future__ import annotations

import json
from typing import Any

import pytest
import tidings
from click.testing import CliRunner
from tidings import Param, ProviderInfo, hookimpl
from tidings.cli import main

from tiny import TinyCursor, TinyFeed, TinyServer, make_watch


class OptionFeed(TinyFeed):
    """The tiny feed with declared options; ``fetch_page`` records the options it was handed."""

    name = "option-feed"
    seen: list[Any]

    def __init__(self) -> None:
        self.seen = []

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name, kind="feed", description="tiny, with options", cursor_type=TinyCursor,
            default_base_url="https://tiny.test/api",
            params=(
                Param("request_id", "an id", repeatable=True),
                Param("limit", "page size", type=int, minimum=1, default=3),
                Param("mode", "how", choices=("empty", "short"), default="empty"),
                Param("strict", "a flag", type=bool, default=True),
                Param("country", "needed", required=True),
                Param("metadata.KEY", "a filter family"),
            ),
        )

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: TinyCursor) -> tidings.Page:
        self.seen.append(ctx.options)
        return await TinyFeed.fetch_page(self, ctx, cursor)


@pytest.fixture
def option_feed(tidings_plugin: Any) -> OptionFeed:
    return tidings_plugin(OptionFeed())  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_hooks_get_the_typed_options_built_once_per_watch(option_feed: OptionFeed, server: TinyServer) -> None:
    watch = make_watch(server, "option-feed", params={
        "request_id": ["a,b", "c"], "limit": "4", "mode": "SHORT", "strict": "no", "country": "no",
        "metadata.colour": "red",
    })
    await watch.collect()
    options = option_feed.seen[0]
    assert (options.request_id, options.limit, options.mode, options.strict, options.country, options.metadata) == (
        ("a", "b", "c"), 4, "short", False, "no", {"colour": "red"},
    )
    assert len(option_feed.seen) > 1 and all(o is options for o in option_feed.seen)


def test_unknown_missing_and_bad_values_are_refused_in_one_message(option_feed: OptionFeed) -> None:
    with pytest.raises(tidings.ConfigurationError) as caught:
        tidings.Watch("option-feed", params={"requestid": "1", "limit": "x", "mode": "loud", "strict": "maybe"})
    message = str(caught.value)
    assert "\n" not in message
    for part in ("requestid: not an option of this provider (did you mean 'request_id'?)",
                 "country: required", "limit: invalid value for type, expected int, not 'x'",
                 "mode: must be one of empty, short, not 'loud'", "strict: invalid value for type, expected bool"):
        assert part in message, message
    with pytest.raises(tidings.ConfigurationError, match="limit: must be at least 1, not 0"):
        tidings.Watch("option-feed", params={"country": "no", "limit": 0})


def test_a_watch_setting_given_as_param_says_where_it_belongs(option_feed: OptionFeed) -> None:
    with pytest.raises(tidings.ConfigurationError, match="use --webhook-listen"):
        tidings.Watch("option-feed", params={"country": "no", "webhook_listen": "0.0.0.0:1"})


@pytest.mark.parametrize(("params", "wrong"), [
    ({"requestid": "abc"}, "did you mean 'request_id'"),
    ({"request_id": "abc", "page_size": "0"}, "page_size: must be at least 1"),
    ({"request_id": "abc", "bulk_follow": "both"}, "bulk_follow: must be one of items, call"),
])
def test_the_shipped_plugins_refuse_bad_options_when_the_watch_is_built(params: dict[str, str], wrong: str) -> None:
    with pytest.raises(tidings.ConfigurationError, match=wrong):
        tidings.Watch("request-status", base_url="https://rs.test", params=params)


@pytest.mark.parametrize(("params", "wrong"), [
    ({"limit": "0"}, "limit: must be at least 1"),
    ({"overlap": "-1"}, "overlap: must be at least 0"),
    ({"page_end": "never"}, "page_end: must be one of empty, short"),
    ({"enrich": "everything"}, "enrich: must be one of status, financing-validation-requests"),
])
def test_financing_activity_options_are_checked_up_front(params: dict[str, str], wrong: str) -> None:
    with pytest.raises(tidings.ConfigurationError, match=wrong):
        tidings.Watch("financing-activity", params=params)


def test_the_cli_refuses_an_unknown_param_with_exit_2(tmp_path: Any) -> None:
    result = CliRunner().invoke(main, ["follow", "request-status", "--base-url", "https://rs.test", "--param",
                                       "requestid=1", "--checkpoint", str(tmp_path / "c.db")])
    assert result.exit_code == 2
    assert "did you mean 'request_id'" in result.stderr and "Traceback" not in result.stderr


def test_providers_json_lists_options_from_the_declaration() -> None:
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(main, ["providers", "--json"]).stdout)}
    declared = tidings.providers()["request-status"].info.params
    options = {o["name"]: o for o in rows["request-status"]["options"]}
    assert list(options) == [p.name for p in declared]
    assert options["page_size"] == {"name": "page_size", "type": "int", "required": False, "repeatable": False,
                                    "default": 100, "choices": None, "minimum": 1, "work": False,
                                    "help": options["page_size"]["help"]}
    assert options["request_id"]["work"] and options["request_id"]["repeatable"]
    assert options["bulk_follow"]["choices"] == ["items", "call"]


@pytest.mark.parametrize("provider", sorted(tidings.providers()))
def test_each_provider_page_lists_its_options_from_the_declaration(provider: str) -> None:
    from pathlib import Path

    from tidings._options import option_table

    page = (Path(__file__).parents[1] / "docs" / "providers" / f"{provider}.md").read_text()
    block = page.split("tests/test_options.py checks it -->\n", 1)[1].split("<!-- /options -->", 1)[0]
    assert block == option_table(tidings.providers()[provider].info.params)

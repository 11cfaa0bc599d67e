"""The package surface, the provider description, and the CLI line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tidings
import tidings_financing_activity
from tidings_financing_activity import FinancingActivityEmulator


def test_all_is_complete() -> None:
    public = {n for n in dir(tidings_financing_activity) if not n.startswith("_")}
    modules = {"auth", "emulator", "models", "plugin"}
    assert public - modules == set(tidings_financing_activity.__all__)


def test_provider_is_found_through_its_entry_point() -> None:
    entry = tidings.providers()["financing-activity"]
    info = entry.info
    assert entry.distribution == "tidings-financing-activity"
    assert (info.kind, info.default_base_url) == ("feed", "https://api.securefinancing.com/v1")
    assert info.emulator is FinancingActivityEmulator
    assert {p.name for p in info.params} >= {"client_id", "client_secret", "audience", "token_url", "enrich"}


def test_docs_page_lists_every_param() -> None:
    page = Path(__file__).parents[3] / "docs" / "providers" / "financing-activity.md"
    text = page.read_text()
    for param in tidings.providers()["financing-activity"].info.params:
        assert f"`{param.name}`" in text, param.name


def test_cli_follows_the_emulator(tmp_path: Path) -> None:
    cli = pytest.importorskip("tidings.cli")
    from click.testing import CliRunner

    emulator = FinancingActivityEmulator(seed=5)
    scenario = emulator.scenario(12)
    with emulator.serve() as url:
        args = ["follow", "financing-activity", "--base-url", url, "--token", emulator.token,
                "--after", str(scenario.after), "--page-size", "4", "--until-idle", "--quiet",
                "--interval", "0.01", "--checkpoint", str(tmp_path / "c.db")]
        result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {line["id"] for line in lines} == scenario.expected_ids
    assert len(lines) == len(scenario.expected_ids)
    first = lines[0]
    assert set(first) == {"provider", "id", "subject", "type", "status", "occurred_at", "terminal", "raw"}
    assert first["raw"]["event_identification"] == first["id"]

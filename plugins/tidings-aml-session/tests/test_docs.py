"""The docs page names what users configure: the country endpoints, the scopes, the CLI line, every param."""

from __future__ import annotations

from pathlib import Path

from tidings_aml_session.plugin import PARAMS

PAGE = Path(__file__).resolve().parents[3] / "docs" / "providers" / "aml-session.md"


def test_docs_page_names_the_endpoints_scopes_and_params() -> None:
    text = PAGE.read_text()
    for country in ("no", "se", "fi"):
        assert f"POST /organization/session/{country}" in text
    for scope in ("aml_organization/basic", "aml_organization/OFAC"):
        assert scope in text
    assert "tidings follow aml-session" in text
    for param in PARAMS:
        assert f"`{param.name}`" in text, param.name
    assert "[ours]" in text

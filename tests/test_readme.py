"""The README opens with exactly two set-up commands, and .ci/run runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    before_library_example = text.split("## ", 1)[0]
    return re.findall(r"```\n(.+?)\n```", before_library_example, flags=re.S)


def test_readme_opens_with_two_commands_install_demo_and_tests() -> None:
    commands = _commands()
    assert len(commands) == 2
    demo, tests = commands
    assert demo.endswith("tidings demo")
    assert "pytest" in tests and "ruff check" in tests and "mypy core/tidings" in tests
    plugins = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
    for command in commands:
        assert sorted(re.findall(r"-e plugins/([\w-]+)", command)) == plugins


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci.splitlines()

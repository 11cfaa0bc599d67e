"""The docs cannot rot: hook headings match the hookspecs, code blocks run, the example plugin works.

1. every hook in :mod:`tidings.hookspecs` has exactly one ``## `name(arg, ...)` `` heading
   in ``docs/hooks.md`` with its parameters in order, and no heading names a hook that does not exist;
2. every fenced ``python`` block in ``docs/*.md`` (not ``docs/providers/``, which belong to the
   plugin authors) runs in a fresh interpreter, in a temporary directory, with a timeout; a block
   whose first line is ``# not run`` is skipped;
3. a block preceded by ``<!-- file: PATH -->`` equals that file's text;
4. the example plugin under ``docs/example-plugin`` keeps the provider contract (asyncio and trio).
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest
import tidings
import tidings.hookspecs
from tidings.sandbox import Clock, Emulator
from tidings.testing.contract import ProviderContract

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE_SRC = DOCS / "example-plugin" / "src"
BLOCK_TIMEOUT = 120.0

FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FILE_MARK = re.compile(r"<!--\s*file:\s*(?P<path>\S+)\s*-->\s*\n\s*$")
HOOK_HEADING = re.compile(r"^##\s+`(?P<name>\w+)\((?P<args>[^)]*)\)`\s*$", re.MULTILINE)


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))  # top level only: docs/providers/ belongs to the plugins


def blocks(page: Path) -> Iterator[tuple[str, int, str, str | None]]:
    """(language, line number, text, the file it claims to show) of every fenced block."""
    text = page.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        mark = FILE_MARK.search(before[-300:])
        line = before.count("\n") + 1
        yield match["lang"], line, match["body"], mark["path"] if mark else None


# -- 1. hooks -----------------------------------------------------------------------


def hookspecs() -> dict[str, list[str]]:
    pm = pluggy.PluginManager("tidings")
    pm.add_hookspecs(tidings.hookspecs)
    specs: dict[str, list[str]] = {}
    for name in dir(pm.hook):
        caller = getattr(pm.hook, name)
        if isinstance(caller, pluggy.HookCaller) and caller.spec is not None:
            specs[name] = list(inspect.signature(caller.spec.function).parameters)
    return specs


def test_hookspecs_found() -> None:
    specs = hookspecs()
    assert {"fetch_page", "parse_event", "checkpoint", "is_terminal"} <= set(specs)


def headings() -> list[tuple[str, list[str]]]:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    return [
        (m["name"], [a.strip() for a in m["args"].split(",") if a.strip()]) for m in HOOK_HEADING.finditer(text)
    ]


@pytest.mark.parametrize("hook", sorted(hookspecs()))
def test_every_hook_documented_with_its_signature(hook: str) -> None:
    params = hookspecs()[hook]
    found = [args for name, args in headings() if name == hook]
    assert found, f"docs/hooks.md has no heading ## `{hook}({', '.join(params)})`"
    assert len(found) == 1, f"docs/hooks.md has {len(found)} headings for {hook!r}"
    assert found[0] == params, f"docs/hooks.md documents {hook}({', '.join(found[0])}), the spec says {params}"


def test_no_heading_for_a_hook_that_does_not_exist() -> None:
    specs = hookspecs()
    unknown = [name for name, _ in headings() if name not in specs]
    assert not unknown, f"docs/hooks.md documents hooks that do not exist: {unknown}"
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    level2 = re.findall(r"^##\s+`\w+\(", text, re.MULTILINE)
    assert len(level2) == len(headings()), "a ## heading in docs/hooks.md is not of the form `name(arg, ...)`"


# -- 2. code blocks run ---------------------------------------------------------------

PYTHON_BLOCKS = [
    pytest.param(body, id=f"{page.name}:{line}")
    for page in doc_pages()
    for lang, line, body, _ in blocks(page)
    if lang == "python" and not body.lstrip().startswith("# not run")
]


def test_there_are_code_blocks() -> None:
    assert len(PYTHON_BLOCKS) > 10


@pytest.mark.parametrize("code", PYTHON_BLOCKS)
def test_code_block_runs(code: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(EXAMPLE_SRC), env.get("PYTHONPATH")]))
    env.pop("TIDINGS_LOAD_PLUGINS", None)
    env.pop("TIDINGS_BLOCK_PLUGINS", None)
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=BLOCK_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the block did not finish within {BLOCK_TIMEOUT}s:\n{code}\n{exc.stderr or ''}")
    assert done.returncode == 0, f"the block failed:\n{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


# -- 3. file blocks equal their files -------------------------------------------------------

FILE_BLOCKS = [
    pytest.param(body, path, id=path)
    for page in doc_pages()
    for _, _, body, path in blocks(page)
    if path is not None
]


def test_the_tutorial_shows_every_example_file() -> None:
    shown = {path for _, path in (p.values for p in FILE_BLOCKS)}
    on_disk = {
        str(p.relative_to(ROOT)) for p in (DOCS / "example-plugin").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert on_disk <= shown, f"example files the tutorial does not show: {sorted(on_disk - shown)}"


@pytest.mark.parametrize(("body", "path"), FILE_BLOCKS)
def test_file_block_equals_file(body: str, path: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"the docs show {path}, which does not exist"
    assert body == file.read_text(encoding="utf-8"), f"the block showing {path} differs from the file"


# -- 4. the example plugin keeps the contract ---------------------------------------------


@pytest.fixture(scope="module")
def _example_on_path() -> Iterator[None]:
    sys.path.insert(0, str(EXAMPLE_SRC))
    yield
    sys.path.remove(str(EXAMPLE_SRC))


class TestExamplePluginContract(ProviderContract):
    """The contract suite on docs/example-plugin, registered for the test and unregistered after."""

    provider = "weather-alerts"

    @pytest.fixture(autouse=True)
    def _registered(self, _example_on_path: None) -> Iterator[None]:
        from tidings_weather_alerts import plugin

        tidings.register(plugin)
        yield
        tidings.unregister(plugin)

    def make_emulator(self) -> Emulator:
        from tidings_weather_alerts.emulator import WeatherAlertsEmulator

        return WeatherAlertsEmulator(seed=7, clock=Clock(speed=self.clock_speed))


def test_example_plugin_metadata(_example_on_path: None) -> None:
    import tomllib

    project = tomllib.loads((DOCS / "example-plugin" / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["tidings"] == {"weather-alerts": "tidings_weather_alerts.plugin"}
    from tidings_weather_alerts import plugin

    tidings.register(plugin)
    try:
        info = tidings.providers()["weather-alerts"].info
        assert info.kind == "feed"
        assert info.emulator is not None and info.emulator().provider == "weather-alerts"
    finally:
        tidings.unregister(plugin)

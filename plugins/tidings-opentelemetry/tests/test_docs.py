"""The plugin's docs page: its code runs in a fresh interpreter, and its tables list exactly what the plugin makes."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tidings_opentelemetry._metrics import Metrics

PAGE = Path(__file__).parents[3] / "docs" / "plugins" / "opentelemetry.md"
FENCE = re.compile(r"^```python\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def blocks() -> list[str]:
    found = [m["body"] for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]
    return [body for body in found if not body.startswith("# not run")]


def test_the_page_has_the_set_ups_to_run() -> None:
    assert len(blocks()) == 2


@pytest.mark.parametrize("index", range(len(blocks())))
def test_a_code_block_runs(index: int, tmp_path: Path) -> None:
    body = blocks()[index].replace("9464", str(free_port()))
    if "serve_prometheus" in body:  # the notebook's three lines: then scrape what they serve
        body += (
            "\nimport httpx, tidings\n"
            "from tidings_financing_activity.emulator import FinancingActivityEmulator\n"
            "emulator = FinancingActivityEmulator()\n"
            "scenario = emulator.scenario(6)\n"
            "tidings.collect(tidings.Watch('financing-activity', base_url=emulator.base_url, token=emulator.token,\n"
            "    transport=emulator.transport(), after=scenario.after, interval=0.01))\n"
            "text = httpx.get(url).text\n"
            "assert 'tidings_events_delivered_total{' in text and '} 6.0' in text, text\n"
        )
    done = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr


class Names:
    """A meter that only notes what is created on it."""

    def __init__(self) -> None:
        self.made: dict[str, tuple[str, str]] = {}

    def __getattr__(self, kind: str) -> Any:
        def create(name: str, callbacks: Any = None, unit: str = "", **_: Any) -> Any:
            self.made[name] = (kind.removeprefix("create_").removeprefix("observable_"), unit)
            return self

        return create


def test_the_metrics_table_lists_every_instrument_with_its_type_and_unit() -> None:
    meter = Names()
    Metrics(meter)  # type: ignore[arg-type]
    kinds = {"counter": "counter", "histogram": "histogram", "gauge": "gauge"}
    rows = re.findall(r"^\| `(tidings\.[\w.]+)` \| `(\w+)` \| (\w+) \| `([^`]*)` \|", PAGE.read_text(), re.MULTILINE)
    table = {name: (kind, unit) for name, _, kind, unit in rows}
    assert table == {name: (kinds[kind], unit) for name, (kind, unit) in meter.made.items()}
    for name, prometheus, kind, unit in rows:
        suffix = {"s": "_seconds"}.get(unit, "") + ("_total" if kind == "counter" else "")
        assert prometheus == name.replace(".", "_") + suffix


def test_the_readme_links_the_page() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    assert "(docs/plugins/opentelemetry.md)" in readme

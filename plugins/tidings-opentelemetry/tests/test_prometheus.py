"""``tidings follow --metrics-port``: a Prometheus endpoint served by OpenTelemetry's exporter while the watch runs."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tidings
from tidings.sandbox import Faults
from tidings_financing_activity import FinancingActivityEmulator
from tidings_opentelemetry import prometheus

TIDINGS = str(Path(sys.executable).with_name("tidings"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample called ``name`` that has ``labels``, or None."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(?P<labels>[^}}]*)\}} (?P<value>\S+)", line)
        if match and all(f'{k}="{v}"' in match["labels"] for k, v in labels.items()):
            return float(match["value"])
    return None


def test_follow_serves_the_watchs_metrics_for_prometheus(tmp_path: Path) -> None:
    emulator = FinancingActivityEmulator(seed=4)
    scenario = emulator.scenario(20)
    emulator.faults = Faults(rate_limit_rate=0.3, retry_after=0.02, seed=4)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    text = ""
    with emulator.serve() as base_url:
        follow = subprocess.Popen(
            [TIDINGS, "follow", "financing-activity", "--base-url", base_url, "--token", emulator.token,
             "--after", str(scenario.after), "--page-size", "4", "--interval", "0.05",
             "--metrics-port", str(port), "--checkpoint", str(tmp_path / "c.db")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and follow.poll() is None:
                try:
                    text = httpx.get(url, timeout=5).text
                except httpx.TransportError:
                    text = ""
                if sample(text, "tidings_events_delivered_total") == 20:  # the scenario, all delivered
                    break
                time.sleep(0.1)
        finally:
            follow.send_signal(signal.SIGTERM)
            out, err = follow.communicate(timeout=30)
    assert follow.returncode == 0, err
    labels = {"tidings_provider": "financing-activity", "tidings_watch": "financing-activity"}
    assert sample(text, "tidings_events_delivered_total", **labels) == 20 == len(out.splitlines())
    assert sample(text, "tidings_pages_read_total", **labels)
    assert sample(text, "tidings_fetch_duration_seconds_count", **labels)
    assert sample(text, "tidings_fetch_retries_total", error_type="TransientError", **labels)
    assert sample(text, "tidings_fetch_retry_wait_seconds_count", tidings_retry_after="true", **labels)
    assert sample(text, "tidings_lag_seconds", **labels) is not None
    assert sample(text, "http_client_duration_milliseconds_count", http_status_code="429")  # the instrumented client
    assert "# TYPE tidings_events_delivered_total counter" in text
    with pytest.raises(httpx.TransportError):  # served for the run only
        httpx.get(url, timeout=5)


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(tidings.ConfigurationError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            prometheus._start("127.0.0.1", port)

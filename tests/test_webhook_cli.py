"""``tidings follow --webhook-listen``: the run's own receiver, against the aml-session emulator's signed webhooks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from tidings.cli import main
from tidings.sandbox import Clock
from tidings.webhooks import sign
from tidings_aml_session import AmlSessionEmulator

TIDINGS = str(Path(sys.executable).with_name("tidings"))
SECRET = "whsec_" + "Y2xpLXdlYmhvb2stc2VjcmV0LTEyMzQ1Ng=="
ORG = "923609016"
BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])


@pytest.fixture
def served() -> Iterator[tuple[AmlSessionEmulator, str]]:
    emulator = AmlSessionEmulator(seed=5, clock=Clock(speed=10.0), webhook_secret=SECRET)
    with emulator.serve() as url:  # sends its webhooks from a thread while it serves
        yield emulator, url


def command(emulator: AmlSessionEmulator, url: str, backend: str, *extra: str) -> list[str]:
    return [TIDINGS, "follow", "aml-session", "--base-url", url, "--token", emulator.token, "--quiet",
            "--backend", backend, "--param", "country=no", "--param", f"identifier={ORG}", *extra]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@BACKENDS
def test_signed_webhooks_end_the_run_long_before_its_poll_interval(
    served: tuple[AmlSessionEmulator, str], tmp_path: Path, backend: str
) -> None:
    emulator, url = served
    args = command(emulator, url, backend, "--param", "reports=aml-report", "--interval", "8",
                   "--max-interval", "8", "--webhook-listen", "127.0.0.1:0")
    started = time.monotonic()
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TIDINGS_WEBHOOK_SECRET": SECRET})
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    sid = emulator.latest[ORG]
    assert [e["id"] for e in events] == [f"{sid}:JsonDataReady", f"{sid}:ReportReady:aml-report", f"{sid}:AllDone"]
    assert took < 6, took  # polling alone: the first poll, then one every 8 s
    sent = emulator.session_requests[0]["webhooks"]
    assert sent["url"].startswith("http://127.0.0.1:") and sent["url"].endswith("/")
    answers = [w["answer"] for w in emulator.webhook_log]
    assert 200 in answers and set(answers) <= {200, 503, None}  # 503/None: sent as the run ended
    assert SECRET not in proc.stdout + proc.stderr


@BACKENDS
def test_a_forged_webhook_is_refused_and_sigterm_ends_the_run_at_once(tmp_path: Path, backend: str) -> None:
    emulator = AmlSessionEmulator(seed=6, json_delay=1000, report_delay=1000, webhook_secret=SECRET, webhooks="never")
    port = free_port()
    public = f"http://localhost:{port}/public/hooks"
    with emulator.serve() as url:
        args = command(emulator, url, backend, "--interval", "30", "--max-interval", "30",
                       "--webhook-listen", f"127.0.0.1:{port}", "--webhook-secret", SECRET, "--webhook-url", public)
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while not emulator.latest and time.monotonic() < deadline:
                time.sleep(0.02)
            sid = emulator.latest[ORG]
            assert emulator.session_requests[0]["webhooks"]["url"] == public  # --webhook-url is what it is given
            body = json.dumps({"sessionId": sid, "status": "ReportReady"}).encode()

            def polls() -> int:
                return sum(1 for m, p in emulator.requests if m == "GET" and p == f"/organization/session/{sid}")

            def post(headers: dict[str, str]) -> int:
                return httpx.post(public, content=body, headers=headers, timeout=5).status_code

            while post(emulator.signed("msg_probe", body)) == 503 and time.monotonic() < deadline:
                time.sleep(0.02)  # the receiver serves before start; it takes webhooks once the streams run
            time.sleep(0.2)
            before = polls()
            stamp = int(time.time())
            forged = {"webhook-id": "msg_f", "webhook-timestamp": str(stamp),
                      "webhook-signature": sign("whsec_" + "b3RoZXItc2VjcmV0", "msg_f", stamp, body)}
            assert post(forged) == 401
            assert post({}) == 401  # unsigned
            time.sleep(0.3)
            assert polls() == before  # refused webhooks never reach the watch
            assert post(emulator.signed("msg_good", body)) == 200
            while polls() == before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert polls() == before + 1  # a good one makes it poll at once, not in 30 s
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - stopped < 5
    assert SECRET not in out + err
    with pytest.raises(httpx.ConnectError):  # the receiver ended with the run
        httpx.post(public, content=b"{}", timeout=2)


def test_webhook_options_are_checked(tmp_path: Path) -> None:
    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["follow", *args, "--base-url", "http://127.0.0.1:9", "--checkpoint",
                                         str(tmp_path / "c.db")], catch_exceptions=False)

    no_hooks = run("financing-activity", "--webhook-listen", "127.0.0.1:0", "--webhook-secret", "s3cret-value")
    assert no_hooks.exit_code == 2 and "takes no webhooks" in no_hooks.output
    assert "s3cret-value" not in no_hooks.output
    lonely = run("aml-session", "--webhook-url", "https://hooks.example.org/")
    assert lonely.exit_code == 2 and "--webhook-url needs --webhook-listen" in lonely.output
    bad = run("aml-session", "--webhook-listen", "localhost:http")
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output
    help_text = CliRunner().invoke(main, ["follow", "--help"]).output
    assert "--webhook-listen" in help_text and "TIDINGS_WEBHOOK_SECRET" in help_text

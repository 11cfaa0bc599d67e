"""Faults at 25 % of requests, over real loopback HTTP against each provider's emulator.

Every provider: a fault-free run, then a run with a quarter of its API requests faulted (5xx,
429 with ``Retry-After``, cut-off bodies, resets, HTML pages). Lost = 0, duplicates = 0, every
retry waits at least the ``Retry-After`` asked, and requests stay within 1.5 x the fault-free
run. A table of the figures is printed at the end (``-s`` shows it); ``TIDINGS_SOAK=1`` runs
larger scenarios and more seeds.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import tidings
from reliability.emulators import EMULATORS, PROVIDERS
from tidings.sandbox import Clock, Faults
from tidings.testing import watch_for

pytestmark = pytest.mark.anyio
SOAK = os.environ.get("TIDINGS_SOAK") == "1"
SIZE = 60 if SOAK else 20
SEEDS = range(1, 11) if SOAK else range(1, 3)
QUARTER = {"error_rate": 0.08, "rate_limit_rate": 0.05, "truncated_rate": 0.04, "reset_rate": 0.04,
           "non_json_rate": 0.04, "retry_after": 0.2}
ROWS: list[tuple[Any, ...]] = []
TOTALS: dict[str, list[int]] = {}  # provider -> [requests, fault-free requests] over every seed and backend
# a session's polls follow the emulator's clock, so one run's request count varies with timing: its
# bound holds over all its runs together
BY_TIME = {"aml-session"}




class RetryLog:
    """An observer of ``fetch_retried``: each retry's error and wait."""

    def __init__(self) -> None:
        self.waits: list[tuple[float | None, float]] = []

    @tidings.hookimpl
    def fetch_retried(self, error: BaseException, wait: float) -> None:
        self.waits.append((getattr(error, "retry_after", None), wait))


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    if ROWS:
        head = ("provider", "backend", "seed", "faults injected", "expected", "delivered", "duplicated", "requests",
                "fault-free", "ratio", "Retry-After honoured")
        lines = [" | ".join(head)] + [" | ".join(str(c) for c in row) for row in ROWS]
        print("\n\nfaults at 25 %, loopback HTTP\n" + "\n".join(lines))
    for provider, (requests, clean) in TOTALS.items():
        assert requests <= 1.5 * clean, f"{provider}: {requests} requests against {clean} without faults"


async def _run(provider: str, seed: int, faults: dict[str, float]) -> tuple[list[str], frozenset[str], int, int]:
    emulator = EMULATORS[provider](seed=7, clock=Clock(speed=20.0))
    emulator.faults = Faults(seed=seed, **faults)  # type: ignore[arg-type]
    if faults:
        emulator.faults.fail_next("429")  # at least one fault, and a Retry-After, in the shortest run
    scenario = emulator.scenario(SIZE)
    got: list[str] = []
    with emulator.serve() as url:
        watch = watch_for(emulator, scenario, base_url=url, transport=None, max_retries=40, retry_max_wait=0.2,
                          request_deadline=20.0)
        with anyio.fail_after(120):
            await watch.run(lambda e: got.append(e.id))
    api = sum(1 for _, path in emulator.requests if emulator.is_api_path(path.split("?")[0]))
    return got, emulator.expected_ids(scenario), api, sum(emulator.faults.served.values())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_quarter_of_requests_faulted(provider: str, seed: int, tidings_plugin: Any, anyio_backend: str) -> None:
    log = tidings_plugin(RetryLog())
    clean, expected, clean_requests, _ = await _run(provider, seed, {})
    assert set(clean) == expected and len(clean) == len(expected)
    got, expected, requests, injected = await _run(provider, seed, QUARTER)
    duplicated = sum(n - 1 for n in Counter(got).values())
    honoured = [wait >= retry_after for retry_after, wait in log.waits if retry_after]
    ratio = requests / clean_requests
    ROWS.append((provider, anyio_backend, seed, injected, len(expected), len(set(got)), duplicated, requests,
                 clean_requests, f"{ratio:.2f}", f"{sum(honoured)}/{len(honoured)}"))
    assert injected > 0
    assert expected - set(got) == set(), "lost events"
    assert duplicated == 0
    assert all(honoured)
    totals = TOTALS.setdefault(provider, [0, 0])
    totals[0] += requests
    totals[1] += clean_requests
    if provider not in BY_TIME:
        assert ratio <= 1.5 or requests - clean_requests <= 3  # a tiny run: a fault or two weigh heavily

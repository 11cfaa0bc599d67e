"""SIGKILL at random moments while following each provider into each database; then resume.

The table must hold every event the emulator served exactly once: 0 lost, 0 duplicated, nothing
it never served. The emulator runs in this process on real loopback; the follower is a child of a
small "zygote" process that imported everything once and forks a follower per trial (so a trial
costs a fork, not a Python start), kills it after a random delay, and forks the next, which
resumes. The first follower is not killed before its first event (kills aimed at a tracker's
``start`` are tests/reliability/test_start.py's). Trials alternate asyncio and trio.
``TIDINGS_SOAK=1`` runs 100 kills per pair instead of ``TIDINGS_KILL_TRIALS`` (default 20).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tidings
from tidings.sandbox import Clock

from .conftest import needs_sink_seam

PROVIDERS = ("financing-activity", "opentransact", "aml-session", "request-status", "bank-sync")
TRIALS = 100 if os.environ.get("TIDINGS_SOAK") else int(os.environ.get("TIDINGS_KILL_TRIALS", "20"))

ZYGOTE = r"""
import json, os, random, signal, sys, time, traceback
import anyio, tidings
args = json.loads(sys.argv[1])

class Started(Exception):
    pass

def first_event(event):
    raise Started

def follow(backend, handler=lambda event: None):
    store = tidings.open_store(args["db"], table=args["table"])
    watch = tidings.Watch(args["provider"], base_url=args["base_url"], token=args["token"], params=args["params"],
                          page_size=args["page_size"], after=args["after"], store=store, until_idle=args["feed"],
                          interval=0.01, max_interval=0.05, retry_base_wait=0.01, retry_max_wait=0.05)
    try:
        anyio.run(watch.run, handler, backend=backend)
    finally:
        anyio.run(store.aclose, backend=backend)

def child(backend):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            follow(backend)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code)
    return pid

# The start runs unkilled, up to the first event: a kill between a start request and its answer
# leaves work whose outcome is unknown (reported, never re-sent; tests/reliability/test_start.py).
try:
    follow("asyncio", first_event)
except tidings.HandlerError as exc:
    assert isinstance(exc.__cause__, Started), exc
rng = random.Random(args["seed"])
killed = finished = 0
for trial in range(args["trials"]):
    pid = child(("asyncio", "trio")[trial % 2])
    time.sleep(rng.uniform(0.0, args["max_delay"]))
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        killed += 1
    elif os.WEXITSTATUS(status) == 0:
        finished += 1
    else:
        print(json.dumps({"error": f"trial {trial} failed"}))
        sys.exit(1)
_, status = os.waitpid(child("asyncio"), 0)  # the last one runs to its end
ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
print(json.dumps({"killed": killed, "finished": finished, "last": ok}))
sys.exit(0 if ok else 1)
"""


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigkill_at_random_moments_then_resume_holds_every_event_once(
    provider: str, kind: str, url: str, table_name: str
) -> None:
    needs_sink_seam()
    db = url
    info = tidings.providers()[provider].info
    assert info.emulator is not None
    emulator = info.emulator()
    emulator.clock = Clock(speed=20.0)
    scenario = emulator.scenario(60)
    with emulator.serve() as base_url:
        args = {
            "db": db, "table": table_name, "provider": provider, "base_url": base_url, "token": emulator.token,
            "params": scenario.params, "page_size": scenario.page_size, "after": scenario.after,
            "feed": info.kind == "feed", "trials": TRIALS, "max_delay": 0.25, "seed": hash((provider, kind)) % 1000,
        }
        run = subprocess.run([sys.executable, "-c", ZYGOTE, json.dumps(args)], capture_output=True, text=True,
                             timeout=120 + TRIALS)
        assert run.returncode == 0, run.stdout + run.stderr[-3000:]
        report = json.loads(run.stdout.splitlines()[-1])
        served, expected = emulator.expected_ids(scenario), emulator.expected_after_kills(scenario)
        if provider == "bank-sync":
            served = expected = _of_saved_queues(emulator, db, table_name)
    assert report["killed"] > 0, report  # the kills landed while it was running
    rows = tidings.table(db, table=table_name)
    ids = [e.id for e in rows]
    assert len(ids) == len(set(ids)), "an event is in the table twice"
    missing, extra = expected - set(ids), set(ids) - served  # all that a resume can still read, nothing unserved
    assert not missing and not extra, f"lost {len(missing)} {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}"
    assert all(e.provider == provider for e in rows)
    _check_plugin_columns(provider, db, table_name)


def _of_saved_queues(emulator: object, db: str, table: str) -> frozenset[str]:
    """bank-sync's truth: the events of the queue the watch follows. A follower killed after its start
    triggered a sync but before the stream was saved triggers another on resume; the emulator counts
    the events of every queue, the abandoned ones too, which no watch follows."""
    store = tidings.open_store(db, table=table)
    try:
        rows = store._call(lambda: store._rows(store.dialect.sql(
            "SELECT streams FROM tidings_watches WHERE event_table = ?"), (table,)))
    finally:
        store.close()
    (saved,) = [json.loads(text) for (text,) in rows]
    queues = {s["key"] for s in saved["streams"]}
    return frozenset(i for q in queues for i in emulator.delivered[q])  # type: ignore[attr-defined]


def _check_plugin_columns(provider: str, db: str, table: str) -> None:
    """The plugin's TABLE_COLUMNS are in the table, each filled for some row."""
    from tidings._sinks.columns import provider_columns

    columns = provider_columns(provider)
    assert columns, f"{provider} declares no TABLE_COLUMNS"
    store = tidings.open_store(db, table=table)
    try:
        counts = store._call(lambda: store._rows(
            "SELECT " + ", ".join(f'COUNT("{c.name}")' for c in columns) + f' FROM "{table}"'))[0]
    finally:
        store.close()
    assert all(n > 0 for n in counts), dict(zip([c.name for c in columns], counts, strict=True))

"""Events/s of ``tidings follow --into`` against the same watch printing to /dev/null (and dlt, if installed).

Run from the repository root (PostgreSQL only when ``TIDINGS_TEST_POSTGRES`` names a server)::

    .venv/bin/python benchmarks/bench_into.py                   # 100,000 events, pages of 1,000
    .venv/bin/python benchmarks/bench_into.py --events 5000     # a quick look

The shipped financing-activity emulator serves the events on a loopback port (uvicorn, in this
process); each contender is the real command in a fresh process: ``tidings follow
financing-activity --until-idle --page-size 1000`` with stdout to /dev/null, then the same with
``--into`` each database. The ratio printed is events/s into the table over events/s to /dev/null
(target: at least 0.5). With dlt installed, its ``rest_api`` pipeline into DuckDB over the same
server is the third contender (target: tidings at least 5 times faster).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from tidings_financing_activity.emulator import FinancingActivityEmulator

TIDINGS = str(Path(sys.executable).with_name("tidings"))


def follow(base_url: str, token: str, after: str, workdir: Path, *options: str) -> float:
    """Seconds one ``tidings follow`` takes to read everything (process start included), stdout to /dev/null."""
    cmd = [TIDINGS, "follow", "financing-activity", "--base-url", base_url, "--token", token, "--after", after,
           "--page-size", "1000", "--until-idle", "--interval", "0", "--quiet", *options]
    began = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, cwd=workdir)
    return time.perf_counter() - began


def dlt_into_duckdb(base_url: str, token: str, after: str, workdir: Path) -> float | None:
    try:
        import dlt
        from dlt.sources.rest_api import rest_api_source
    except ImportError:
        return None
    source = rest_api_source({
        "client": {"base_url": base_url + "/", "auth": {"type": "bearer", "token": token}},
        "resources": [{"name": "activity", "endpoint": {
            "path": "activity", "params": {"after": after, "limit": 1000},
            "paginator": {"type": "offset", "limit": 1000, "offset_param": "offset", "limit_param": "limit",
                          "total_path": None, "stop_after_empty_page": True},
            "data_selector": "events"}}],
    })
    pipeline = dlt.pipeline("bench", destination=dlt.destinations.duckdb(str(workdir / "dlt.duckdb")),
                            pipelines_dir=str(workdir / "dlt"))
    began = time.perf_counter()
    pipeline.run(source)
    return time.perf_counter() - began


def populated(n: int) -> tuple[FinancingActivityEmulator, str]:
    """The emulator holding ``n`` events (copies of its own records with new ids and times: building each
    through ``add_event`` looks up its data set among all before it, quadratic at this size)."""
    emulator = FinancingActivityEmulator(max_limit=1000)
    scenario = emulator.scenario(200)
    assert scenario.after is not None
    made = list(emulator.events)
    stored = type(made[0])
    start = made[-1].at
    emulator.events = made[:3]  # the three before `after`
    for i in range(n):
        body = dict(made[3 + i % (len(made) - 3)].body)
        at = start + timedelta(milliseconds=250 * (i // 4))  # ties: four events share a time
        body["event_identification"] = str(uuid.UUID(int=i))
        body["event_date_time"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
        emulator.events.append(stored(len(emulator.events), at, at, body))
    emulator.clock.advance(3600 + n)  # every event visible
    return emulator, scenario.after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each contender (the best counts)")
    args = parser.parse_args()
    emulator, after = populated(args.events)
    databases = {"sqlite": "sqlite:///{dir}/events.db", "duckdb": "duckdb:///{dir}/events.duckdb"}
    if os.environ.get("TIDINGS_TEST_POSTGRES"):
        databases["postgresql"] = os.environ["TIDINGS_TEST_POSTGRES"]
    with tempfile.TemporaryDirectory() as tmp, emulator.serve() as base_url:
        workdir = Path(tmp)
        best: dict[str, float] = {}
        for r in range(args.rounds):
            runs = {"/dev/null": None, **databases}
            for name, template in runs.items():
                fresh = f"bench_{r}_{time.monotonic_ns()}"  # a new position (and table) each run
                options = ["--checkpoint", str(workdir / f"{fresh}.sqlite3")] if template is None else [
                    "--into", template.format(dir=workdir), "--table", fresh]
                seconds = follow(base_url, emulator.token, after, workdir, *options)
                best[name] = min(best.get(name, seconds), seconds)
        dlt_seconds = dlt_into_duckdb(base_url, emulator.token, after, workdir)
    n = args.events
    baseline = n / best["/dev/null"]
    print(f"{n:,} financing-activity events, pages of 1,000, loopback, best of {args.rounds}")
    print(f"  /dev/null          {baseline:>10,.0f} events/s")
    for name in databases:
        rate = n / best[name]
        print(f"  --into {name:<11} {rate:>10,.0f} events/s   {rate / baseline:.2f} x /dev/null")
    if dlt_seconds is None:
        print("  dlt                not installed (pip install 'dlt[duckdb]' to compare)")
    else:
        rate = n / dlt_seconds
        print(f"  dlt -> duckdb      {rate:>10,.0f} events/s   duckdb via tidings is "
              f"{(n / best['duckdb']) / rate:.1f} x dlt")


if __name__ == "__main__":
    main()

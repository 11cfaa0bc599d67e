"""Results: the JSON data set and the PDF reports, by library call and by the save_* parameters."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import tidings
from aml_session_helpers import OK_ORG, REPORTS, make_watch
from tidings_aml_session import OrganizationResult, SessionEvent, fetch_json, fetch_report, start_session

pytestmark = pytest.mark.anyio


async def test_save_parameters_write_each_result_when_its_event_is_delivered(emulator, tmp_path: Path) -> None:
    params = {"country": "no", "identifier": OK_ORG, "reports": REPORTS, "expands": "address",
              "save_json": str(tmp_path / "json"), "save_reports": str(tmp_path / "pdf")}
    seen: list[tuple[str, bool]] = []
    watch = make_watch(emulator, params)

    def handler(event: tidings.Event) -> None:
        saved = event.record.saved_to
        seen.append((event.type, bool(saved) and Path(saved).is_file()))

    await watch.run(handler)
    assert seen == [("JsonDataReady", True), ("ReportReady", True), ("ReportReady", True), ("AllDone", False)]
    check_files(tmp_path, emulator.latest[OK_ORG])


def check_files(root: Path, sid: str) -> None:
    data = json.loads((root / "json" / f"{sid}.json").read_bytes())
    assert data["keyInformation"]["organizationNumber"] == OK_ORG and "address" in data
    for name in ("aml-report", "sanctions-report"):
        assert (root / "pdf" / f"{sid}-{name}.pdf").read_bytes().startswith(b"%PDF")
    assert not list(root.rglob("*.part"))


async def test_library_fetches_results_from_a_handler(emulator) -> None:
    results: dict[str, object] = {}
    watch = make_watch(emulator, {"country": "no", "identifier": OK_ORG, "reports": "aml-report"})

    async def handler(event: tidings.Event) -> None:
        record = event.record
        assert isinstance(record, SessionEvent) and record.session_id == event.subject
        if event.type == "JsonDataReady":
            results["json"] = await fetch_json(watch, record.session_id)
        elif event.type == "ReportReady":
            results[record.entity or ""] = await fetch_report(watch, record.session_id, record.entity or "")

    await watch.run(handler)
    org = results["json"]
    assert isinstance(org, OrganizationResult)
    assert org.organization_number == OK_ORG and org.country == "NO" and org.name
    assert isinstance(results["aml-report"], bytes) and results["aml-report"].startswith(b"%PDF")


async def test_results_are_not_there_before_they_are_ready(emulator) -> None:
    async with httpx.AsyncClient(transport=emulator.transport()) as client:
        http = tidings.HTTP(provider="aml-session", base_url=emulator.base_url, client=client,
                            auth=tidings.BearerToken(emulator.token))
        created = await start_session(http, "no", OK_ORG, reports=["aml-report"])
        with pytest.raises(tidings.ProviderHTTPError):
            await fetch_json(http, created.session_id)
        with pytest.raises(tidings.ConfigurationError):
            await fetch_report(http, created.session_id, "../etc/passwd")

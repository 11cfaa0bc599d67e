"""The distribution as a third party installs it: entry point, provider info, public names."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import tidings
import tidings_request_status
from tidings_request_status import RequestStatusCursor, RequestStatusEmulator
from tidings_request_status import plugin as rs


def test_found_through_its_entry_point() -> None:
    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="tidings")}
    assert names["request-status"] == "tidings_request_status.plugin"
    entry = tidings.providers()["request-status"]
    assert entry.distribution == "tidings-request-status"


def test_provider_info() -> None:
    info = rs.provider_info()
    assert (info.name, info.kind, info.cursor_type) == ("request-status", "tracker", RequestStatusCursor)
    assert info.emulator is RequestStatusEmulator
    assert info.description and "\n" not in info.description


def test_every_param_read_is_described() -> None:
    source = Path(rs.__file__).read_text()
    read = set(re.findall(r'ctx\.param(?:_list)?\("(\w+)"', source)) | set(re.findall(r'params\.get\("(\w+)"', source))
    read |= set(re.findall(r'_codes\(ctx, "(\w+)"', source))
    assert read <= {p.name for p in rs.PARAMS}, read - {p.name for p in rs.PARAMS}


def test_all_is_complete() -> None:
    public = {n for n in dir(tidings_request_status) if not n.startswith("_") and n not in ("annotations",)}
    modules = {"emulator", "models", "plugin"}
    assert set(tidings_request_status.__all__) - {"__version__"} == public - modules

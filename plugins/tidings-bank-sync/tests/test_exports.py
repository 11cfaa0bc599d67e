"""The public surface: ``__all__`` lists every public name, and the entry point finds the provider."""

from __future__ import annotations

import tidings
import tidings_bank_sync
from tidings_bank_sync.emulator import BankSyncEmulator
from tidings_bank_sync.models import QueueCursor


def test_all_is_complete_and_importable() -> None:
    public = {n for n in dir(tidings_bank_sync) if not n.startswith("_")} - {
        "annotations", "emulator", "models", "plugin", "queue"}
    assert public <= set(tidings_bank_sync.__all__)
    assert all(hasattr(tidings_bank_sync, n) for n in tidings_bank_sync.__all__)


def test_the_entry_point_registers_the_provider() -> None:
    entry = tidings.providers()["bank-sync"]
    info = entry.info
    assert (info.kind, info.cursor_type, info.default_base_url) == ("tracker", QueueCursor, "https://api.oxlin.io/v2.1")
    assert entry.distribution == "tidings-bank-sync"
    assert isinstance(info.emulator(), BankSyncEmulator)  # type: ignore[misc]
    assert {"connection_id", "type", "queue_id"} <= {p.name for p in info.params}

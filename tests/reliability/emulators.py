"""The five providers and their emulator classes, for the reliability suite."""

from __future__ import annotations

from typing import Any

PROVIDERS = ["financing-activity", "opentransact", "request-status", "aml-session", "bank-sync"]


def _emulators() -> dict[str, Any]:
    from tidings_aml_session.emulator import AmlSessionEmulator
    from tidings_bank_sync.emulator import BankSyncEmulator
    from tidings_financing_activity import FinancingActivityEmulator
    from tidings_opentransact.emulator import OpenTransactEmulator
    from tidings_request_status import RequestStatusEmulator

    return {"financing-activity": FinancingActivityEmulator, "opentransact": OpenTransactEmulator,
            "request-status": RequestStatusEmulator, "aml-session": AmlSessionEmulator, "bank-sync": BankSyncEmulator}


EMULATORS = _emulators()

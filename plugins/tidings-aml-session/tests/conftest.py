from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from aml_session_helpers import make_emulator
from tidings_aml_session import AmlSessionEmulator


@pytest.fixture
def emulator() -> AmlSessionEmulator:
    return make_emulator()

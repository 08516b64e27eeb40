"""Hardening tests (issue 9): registers the soak marker and makes ``hardening_support``
importable (helpers shared by these tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the bounded (2-minute) soak run of bench/soak.py")

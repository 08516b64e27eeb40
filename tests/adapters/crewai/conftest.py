"""Fixtures for the CrewAI adapter tests: no-network environment and long-lived worker processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from crewai_fs_procs import Worker  # noqa: E402  (sets the no-network env, imports crewai)


@pytest.fixture(scope="session")
def crewai_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway HOME / XDG data dir so CrewAI writes nothing into the real home."""
    home = tmp_path_factory.mktemp("crewai-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("XDG_DATA_HOME", str(home / "data"))
        mp.setenv("CREWAI_STORAGE_DIR", str(home / "crewai-storage"))
        yield home


@pytest.fixture(autouse=True)
def _isolated_home(crewai_home: Path) -> None:
    return None


@pytest.fixture(scope="session")
def workers(
    crewai_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    """Two CrewAI worker processes shared by the multi-process tests (imported once each)."""
    log_dir = tmp_path_factory.mktemp("crewai-logs")
    started: list[Worker] = []
    try:
        for name in ("A", "B"):
            started.append(Worker(name, crewai_home, log_dir))
        for w in started:
            w.wait_ready()
        yield started[0], started[1]
    finally:
        for w in started:
            w.close()

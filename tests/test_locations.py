"""Every way a user hands over a store location: an unknown ``scheme://`` is an error, never a
local directory named after the URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate.locations import is_url, supported_locations

CLI = [sys.executable, "-m", "fencedstate.cli"]
UNKNOWN = ["mongodb://localhost:27017", "mysql://u:pw@db/x", "s3://bucket/state", "HTTP://x"]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("url", UNKNOWN)
def test_unknown_scheme_is_an_error_and_creates_nothing(in_tmp: Path, url: str) -> None:
    with pytest.raises(fs.InvalidArgumentError) as info:
        fs.open_store(url)
    message = str(info.value)
    assert "postgresql://" in message and "etcd://" in message and "directory" in message
    assert "redis://" in message and "rediss://" in message
    assert "pw@" not in message  # a password never reaches the message
    assert list(in_tmp.iterdir()) == []


def test_plain_paths_stay_paths(in_tmp: Path) -> None:
    store = fs.open_store("state")
    store.put("k", 1, expected_version=0)
    assert (in_tmp / "state" / "fencedstate.json").exists()
    # a colon without "//" is a legal directory name, not a URL
    assert isinstance(fs.open_store("a:b"), fs.FileStore)
    assert not is_url("a:b") and not is_url("state/x") and is_url("etcd://h:1")


def test_file_url_is_a_local_path(tmp_path: Path) -> None:
    store = fs.open_store(f"file://{tmp_path}/s")
    store.put("k", 1, expected_version=0)
    assert fs.open_store(str(tmp_path / "s")).get("k") is not None
    assert fs.open_store(f"file://localhost{tmp_path}/s").get("k") is not None
    with pytest.raises(fs.InvalidArgumentError):
        fs.open_store("file://otherhost/s")


def test_supported_locations_names_the_extras() -> None:
    text = supported_locations()
    assert "'postgres'" in text and "'etcd'" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["inspect", "mongodb://localhost:27017"],
        ["history", "mongodb://localhost:27017", "k"],
        ["demo", "--rounds", "1", "--workers", "2", "--dir", "mongodb://localhost:27017"],
    ],
)
def test_cli_refuses_unknown_urls(in_tmp: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [*CLI, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("fencedstate: error:"), proc.stderr
    assert "mongodb://" in proc.stderr
    assert list(in_tmp.iterdir()) == []


def test_cli_inspect_accepts_file_url(tmp_path: Path) -> None:
    fs.open_store(tmp_path / "s").put("plans/a", {"x": 1}, expected_version=0)
    proc = subprocess.run(
        [*CLI, "inspect", f"file://{tmp_path}/s"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "plans/a" in proc.stdout


def test_crewai_persistence_refuses_unknown_urls(in_tmp: Path) -> None:
    from fencedstate_crewai import FencedFlowPersistence as persistence

    with pytest.raises(fs.InvalidArgumentError):
        persistence("mongodb://localhost:27017")
    with pytest.raises(fs.InvalidArgumentError):
        persistence(store="etcd+tls://h:1")
    assert list(in_tmp.iterdir()) == []

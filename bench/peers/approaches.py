"""The table of approaches: name, commit operation, what is durable, modes, setup/final."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peers.ops import (
    AC_MODULE,
    MODES,
    AgentCoherence,
    FencedState,
    FencedStateNone,
    FileLockJson,
    LangGraphStore,
    NaiveJson,
    Op,
    RawFsync,
    RawOverwrite,
    RawRename,
    SqliteCas,
    SqliteCasNormal,
    ac_final,
    ac_setup,
    fs_final,
    fs_setup,
    json_final,
    json_setup,
    lg_final,
    lg_setup,
    sqlite_final,
    sqlite_setup,
)


@dataclass(frozen=True)
class Approach:
    name: str
    op: type[Op]
    durable: str  # what is synced before the commit is acknowledged
    modes: tuple[str, ...] = MODES
    setup: Callable[[Path, str, int], None] | None = None
    final: Callable[[Path, str, int], int] | None = None
    needs: str | None = None  # module that must be importable
    baseline_of: str | None = None  # the row this one repeats with fencedstate from --baseline


APPROACHES: tuple[Approach, ...] = (
    Approach(
        "raw append+fsync", RawFsync, "yes: fsync per commit (physical limit)", ("uncontended",)
    ),
    Approach(
        "raw overwrite+fdatasync",
        RawOverwrite,
        "yes: fdatasync of a preallocated region (ceiling)",
        ("uncontended",),
    ),
    Approach(
        "raw temp+rename+dir fsync",
        RawRename,
        "yes: file fsync + rename + dir fsync",
        ("uncontended",),
    ),
    Approach(
        "naive JSON read/write",
        NaiveJson,
        "no: no fsync, no lock",
        setup=json_setup,
        final=json_final,
    ),
    Approach(
        "filelock+JSON+rename",
        FileLockJson,
        "yes: file fsync + rename + dir fsync",
        setup=json_setup,
        final=json_final,
        needs="filelock",
    ),
    Approach(
        "SQLite WAL CAS sync=FULL",
        SqliteCas,
        "yes: WAL fsync per commit",
        setup=sqlite_setup,
        final=sqlite_final,
    ),
    Approach(
        "SQLite WAL CAS sync=NORMAL",
        SqliteCasNormal,
        "no (power loss): WAL synced only at checkpoint",
        setup=sqlite_setup,
        final=sqlite_final,
    ),
    Approach(
        "LangGraph SqliteStore get+put",
        LangGraphStore,
        "yes: rollback journal, synchronous=FULL (sqlite default)",
        setup=lg_setup,
        final=lg_final,
        needs="langgraph.store.sqlite",
    ),
    Approach(
        "agent-coherence write_cas",
        AgentCoherence,
        "partly: temp file fsynced, directory never fsynced",
        setup=ac_setup,
        final=ac_final,
        needs=AC_MODULE,
    ),
    Approach(
        "fencedstate (default, durable)",
        FencedState,
        "yes: fdatasync per commit (+ dir fsync on new key)",
        setup=fs_setup,
        final=fs_final,
        needs="fencedstate.file.filestore",
    ),
    Approach(
        "fencedstate durability=none",
        FencedStateNone,
        'no: durability="none"',
        setup=fs_setup,
        final=fs_final,
        needs="fencedstate.file.filestore",
    ),
)
FS_DURABLE = "fencedstate (default, durable)"
FS_NONE = "fencedstate durability=none"
BASE_DURABLE = "fencedstate v1 baseline (durable)"
BASE_NONE = "fencedstate v1 baseline durability=none"
# Run only with --baseline SRC: the same workload as the row named in `baseline_of`, with the
# fencedstate package imported from SRC in the worker processes (and in setup and final).
BASELINE_APPROACHES: tuple[Approach, ...] = (
    Approach(
        BASE_DURABLE,
        FencedState,
        "yes: as the baseline release does it",
        setup=fs_setup,
        final=fs_final,
        baseline_of=FS_DURABLE,
    ),
    Approach(
        BASE_NONE,
        FencedStateNone,
        'no: durability="none"',
        setup=fs_setup,
        final=fs_final,
        baseline_of=FS_NONE,
    ),
)
ALL_APPROACHES = APPROACHES + BASELINE_APPROACHES


def short_name(name: str) -> str:
    """Filesystem/CLI-friendly id of an approach name."""
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())

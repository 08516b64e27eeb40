"""A FileStore's journal as the conformance checker reads it: every key's states in log order.

An entry is a ``records.State`` (one raw log line, with its lease) or a ``records.Event``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from ..core.keys import key_to_relpath, relpath_to_key
from ..file import keylog

__all__ = [
    "COMMIT_OPS",
    "EPOCH_BUMP_OPS",
    "JournalEntry",
    "group_by_key",
    "log_files",
    "read_journal",
    "starts_empty",
    "tag",
]

COMMIT_OPS = frozenset({"put", "delete"})
EPOCH_BUMP_OPS = frozenset({"claim", "reclaim"})


class JournalEntry(Protocol):
    """One journal entry: a ``records.State`` (has ``lease``) or a ``records.Event``."""

    @property
    def op(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def epoch(self) -> int: ...
    @property
    def exists(self) -> bool: ...
    @property
    def value(self) -> Any: ...
    @property
    def holder(self) -> str | None: ...


def tag(value: Any, field: str) -> Any:
    """The ``field`` a conformance worker tagged ``value`` with (None if untagged)."""
    return value.get(field) if isinstance(value, dict) else None


def group_by_key(events: Iterable[JournalEntry]) -> dict[str, list[JournalEntry]]:
    """Entries per key, keeping their order."""
    out: dict[str, list[JournalEntry]] = {}
    for e in events:
        out.setdefault(e.key, []).append(e)
    return out


def log_files(store_dir: str) -> Iterator[tuple[str, str]]:
    """``(key, log path)`` of every key log under a FileStore directory."""
    data = os.path.join(os.fspath(store_dir), "data")
    for dirpath, _, filenames in os.walk(data):
        rel_dir = os.path.relpath(dirpath, data)
        for fname in filenames:
            key = relpath_to_key(fname if rel_dir == "." else f"{rel_dir}/{fname}")
            if key is not None:
                yield key, os.path.join(data, key_to_relpath(key))


def read_journal(store_dir: str) -> dict[str, list[Any]]:
    """Every key's complete journal (``records.State`` per log line, torn tail skipped)."""
    return {key: list(keylog.iter_states(path)) for key, path in log_files(store_dir)}


def starts_empty(entries: Sequence[JournalEntry]) -> bool:
    """True if the journal's first entry follows a never-written key (not cut by compaction)."""
    if not entries:
        return True
    e = entries[0]
    return e.version == (1 if e.op in COMMIT_OPS else 0) and e.epoch == (
        1 if e.op in EPOCH_BUMP_OPS else 0
    )

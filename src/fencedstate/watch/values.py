"""What a watch reports: ``Change``, ``Tombstone``, ``WatchTimeoutError``, and the checks of a
watch call's arguments."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from ..errors import FencedStateError, InvalidArgumentError
from ..records import Event, Snapshot, State

KINDS = ("put", "delete", "claim", "renew", "release", "reclaim", "gap")
"""``Change.kind``: the journal's event ops, and ``"gap"`` (events compacted away)."""


@dataclass(frozen=True, slots=True)
class Tombstone(Snapshot):
    """A key that does not exist at ``version``: deleted (or only claimed, never written).

    What ``watch_once`` returns when the change it waited for is a delete, and a ``Change``'s
    snapshot after a delete. ``value`` is always None; ``writer`` and ``committed_at`` are the
    delete's. Test with ``isinstance(snap, fs.Tombstone)``.
    """


@dataclass(frozen=True, slots=True)
class Change:
    """One durable journal event of a watched key, or a gap.

    ``kind`` is the event's op (``put``, ``delete``, ``claim``, ``renew``, ``release``,
    ``reclaim``) or ``"gap"``: some of the key's events between the watcher's last one and
    the next (at ``version``, reported right after the gap) were compacted away
    (``history_limit``) before it read them.
    ``snapshot`` is the key after the event (a ``Tombstone`` when it does not exist; None for a
    gap). ``cursor`` resumes a watch right after this change (``watch(prefix, since=cursor)``).
    ``event`` is the full journal event (None for a gap).
    """

    key: str
    version: int
    kind: str
    snapshot: Snapshot | None
    cursor: str
    event: Event | None = None


class WatchTimeoutError(FencedStateError, TimeoutError):
    """``watch_once`` waited ``timeout`` seconds and the key did not move past
    ``after_version``."""

    advice: ClassVar[str] = (
        "Nothing changed in time: watch again from the same version, or read the key."
    )

    retryable: ClassVar[bool] = True
    key: str
    after_version: int
    timeout: float

    def __init__(
        self, key: str, after_version: int, timeout: float, detail: str | None = None
    ) -> None:
        what = detail or f"did not move past version {after_version}"
        super().__init__(
            f"{key!r} {what} within {timeout:g}s",
            key=key,
            after_version=after_version,
            timeout=timeout,
        )


def snapshot_of(state: State) -> Snapshot:
    """The caller's view of ``state``: its ``Snapshot``, or a ``Tombstone`` if it does not exist."""
    if state.exists:
        return state.snapshot()
    return Tombstone(state.key, None, state.version, state.epoch, state.writer, state.committed_at)


def change_of(state: State, cursor: str) -> Change:
    """The ``Change`` reporting ``state`` (the key's state after one journal event)."""
    return Change(state.key, state.version, state.op, snapshot_of(state), cursor, state.event())


def gap(key: str, version: int, cursor: str) -> Change:
    """A gap: ``key``'s events up to ``version`` may be gone before the watcher saw them."""
    return Change(key, version, "gap", None, cursor, None)


def check_version(after_version: object) -> int:
    if isinstance(after_version, bool) or not isinstance(after_version, int) or after_version < 0:
        raise InvalidArgumentError("after_version must be an int >= 0")
    return after_version


def check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 <= timeout < float("inf")
    ):
        raise InvalidArgumentError("timeout must be None or a finite number of seconds >= 0")
    return float(timeout)


def deadline_of(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` reading ``timeout`` seconds from now (None: no deadline)."""
    return None if timeout is None else time.monotonic() + timeout

"""Copy a whole store to another backend (file <-> PostgreSQL) without losing a byte of state.

Every key moves with its value, version, epoch, holder and retained journal, so a writer's
``expected_version`` and a claim's epoch mean the same on the copy. The copy refuses to start
while a claim is live or a multi-key commit is pending (``wait`` seconds of retrying first), and
verifies afterwards: the same keys, the same number of events per key, the same checksum.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .core import args
from .errors import ClaimHeldError, InvalidArgumentError, StorageError
from .records import State, to_record
from .store import Store

__all__ = ["CopyReport", "copy_store", "key_checksum"]


@dataclass
class CopyReport:
    """What ``copy_store`` moved and checked."""

    events: int = 0
    seconds: float = 0.0
    checksums: dict[str, str] = field(default_factory=dict)  # key -> ``key_checksum``

    @property
    def keys(self) -> int:
        """How many keys were copied."""
        return len(self.checksums)


def key_checksum(history: list[State]) -> str:
    """SHA-256 over a key's retained states (what a copy must preserve exactly)."""
    digest = hashlib.sha256()
    for s in history:
        row = to_record(s) | {"value": s.value if s.exists else None}  # the value, not its text
        if s.lease is not None:
            row["lease"] = [s.lease.boot, s.lease.deadline, s.lease.ttl]
        digest.update(
            json.dumps(list(row.values()), sort_keys=True, separators=(",", ":")).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()


_WAIT = "('fencedstate copy --wait SECONDS', copy_store's wait=, waits that long for it)"
_BUSY_ADVICE = (
    "Nothing was copied: copy again once the claim is released or its lease (expires_in) "
    f"ends {_WAIT}, or reclaim the key if its holder is dead."
)
_IN_FLIGHT_ADVICE = f"Nothing was copied: copy again once the commit ends {_WAIT}."


def _quiescent(src: Store, keys: list[str]) -> None:
    """Raise unless no claim is live and no multi-key commit is pending in ``src``."""
    if src.in_flight():
        busy = StorageError(None, "a multi-key commit is in flight in the source")
        raise busy.advise(_IN_FLIGHT_ADVICE)
    for key in keys:
        state = src.read_state(key)
        if state is not None and state.holder and state.lease and state.lease.live(src.clock):
            raise ClaimHeldError(key, state.holder, state.lease.remaining(src.clock))


def copy_store(
    src: Store, dst: Store, *, wait: float = 0.0, progress: Callable[[int, int], None] | None = None
) -> CopyReport:
    """Copy every key of ``src`` into ``dst``, then verify. ``dst`` must not have any of them,
    except with the same history (an interrupted copy's keys: running it again finishes it).

    ``ClaimHeldError`` / ``StorageError`` if ``src`` is busy after ``wait`` seconds;
    ``InvalidArgumentError`` if ``dst`` holds a key with another history or the copy does not
    verify.
    Writers must not use ``src`` while it is copied (the check above runs at the start).
    """
    wait = args.wait(wait)  # a NaN deadline would never pass
    started = time.monotonic()
    keys = src.read_all_keys()
    deadline = started + wait
    while True:
        try:
            _quiescent(src, keys)
            break
        except (ClaimHeldError, StorageError) as exc:
            if time.monotonic() >= deadline:
                if isinstance(exc, ClaimHeldError):
                    exc.advise(_BUSY_ADVICE)
                raise
            time.sleep(0.05)
    clash = sorted(set(keys) & set(dst.read_all_keys()))
    done = {
        k for k in clash if key_checksum(dst.read_history(k)) == key_checksum(src.read_history(k))
    }
    taken = [k for k in clash if k not in done]
    if taken:
        raise InvalidArgumentError(
            f"the destination already has {len(taken)} of the keys with another history "
            f"(e.g. {taken[0]!r}): copy into a new directory, schema or namespace"
        )
    report = CopyReport()
    for i, key in enumerate(keys, start=1):
        history = src.read_history(key)
        if not history:
            continue
        if key not in done:  # one an interrupted copy loaded is kept: the run finishes it
            dst.load_key(key, history)
        report.events += len(history)
        report.checksums[key] = key_checksum(history)
        if progress is not None:
            progress(i, len(keys))
    _verify(dst, report)
    report.seconds = time.monotonic() - started
    return report


def _verify(dst: Store, report: CopyReport) -> None:
    copied = set(dst.read_all_keys())
    missing = sorted(set(report.checksums) - copied)
    if missing:
        raise InvalidArgumentError(
            f"copy did not verify: {len(missing)} keys missing (e.g. {missing[0]!r})"
        )
    for key, expected in report.checksums.items():
        got = key_checksum(dst.read_history(key))
        if got != expected:
            raise InvalidArgumentError(f"copy did not verify: key {key!r} differs")

"""Read-after-write verification: commit, re-read, compare; a typed error when they differ.

An acknowledged write is only evidence that the store accepted bytes. ``verified_put`` and
``verified_commit`` re-read the key after the commit and check that the committed version holds
exactly the value written (found in the key's journal if later commits already moved the key
on), plus an optional domain ``check`` on the re-read value. ``verify_effect`` does the same for
an external side effect through a caller-supplied probe.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fencedstate.errors import VerificationError

if TYPE_CHECKING:
    from fencedstate.claim import Claim
    from fencedstate.records import Snapshot
    from fencedstate.store import Store


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def verify_committed(
    store: Store,
    snap: Snapshot,
    *,
    check: Callable[[Any], bool] | None = None,
    history_depth: int = 1000,
) -> Snapshot:
    """Re-read ``snap.key`` and confirm ``snap.version`` holds ``snap.value``; return the re-read.

    If later commits moved the key on, the committed version is looked up in the journal.
    """
    fresh = store.get(snap.key)
    if fresh is None:
        raise VerificationError(snap.key, snap.version, "missing", snap.value, None)
    if fresh.version == snap.version:
        if not _same(fresh.value, snap.value):
            raise VerificationError(snap.key, snap.version, "value", snap.value, fresh.value)
        observed = fresh.value
    elif fresh.version > snap.version:
        events = [
            e for e in store.history(snap.key, limit=history_depth) if e.version == snap.version
        ]
        if not events:
            raise VerificationError(snap.key, snap.version, "version", snap.value, fresh.value)
        observed = events[-1].value
        if not _same(observed, snap.value):
            raise VerificationError(snap.key, snap.version, "value", snap.value, observed)
    else:
        raise VerificationError(snap.key, snap.version, "version", snap.value, fresh.value)
    if check is not None and not check(observed):
        raise VerificationError(snap.key, snap.version, "check", snap.value, observed)
    return fresh


def verified_put(
    store: Store,
    key: str,
    value: Any,
    *,
    expected_version: int,
    writer: str | None = None,
    check: Callable[[Any], bool] | None = None,
    **kwargs: Any,
) -> Snapshot:
    """``store.put`` then ``verify_committed``; returns the snapshot of the write."""
    snap = store.put(key, value, expected_version=expected_version, writer=writer, **kwargs)
    verify_committed(store, snap, check=check)
    return snap


def verified_commit(
    store: Store,
    claim: Claim,
    value: Any,
    *,
    expected_version: int,
    check: Callable[[Any], bool] | None = None,
) -> Snapshot:
    """``claim.commit`` then ``verify_committed``; returns the snapshot of the write."""
    snap = claim.commit(value, expected_version=expected_version)
    verify_committed(store, snap, check=check)
    return snap


def verify_effect(key: str, probe: Callable[[], Any], expected: Any = True) -> Any:
    """Call ``probe`` (which observes an external effect) and require ``expected``; return it."""
    try:
        observed = probe()
    except Exception as exc:
        raise VerificationError(key, None, "probe", expected, repr(exc)) from exc
    if not _same(observed, expected):
        raise VerificationError(key, None, "probe", expected, observed)
    return observed

"""Check a real store's journal against the invariants of the TLA+ specs in ``specs/``.

Each predicate below is transcribed from one spec invariant, cited beside it by name and spec
(``SPEC_REFS``; ``tests/test_conformance.py`` checks that every cited spec still defines that
operator). Three inputs, each optional:

- the journal: every key's states in log order (``read_journal``, from the raw log lines, which
  carry the lease that ``Store.history`` events leave out), checked by ``check_journal``;
- what callers were told (``Ack`` records written by the processes that ran the operations,
  with ``Clock.now`` timestamps around each call), checked by ``check_acks``;
- the raw log files, checked byte by byte by ``check_log_file``.

Values written by conformance workers carry tags the checker reads: ``token`` (unique per
attempted write), ``claim_epoch``/``owner`` (set for commits made under a claim, None for
claimless puts) and, for task keys, ``status``. Untagged values are checked by the
journal-structure predicates only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.clock import Lease
from ..errors import CorruptStateError, InvalidArgumentError
from ..file import keylog
from ..records import decode_line
from .journal import (
    COMMIT_OPS,
    EPOCH_BUMP_OPS,
    JournalEntry,
    group_by_key,
    log_files,
    read_journal,
    starts_empty,
    tag,
)
from .trace import trace_module

__all__ = [
    "COMMIT_OPS",
    "EPOCH_BUMP_OPS",
    "SPEC_REFS",
    "Ack",
    "AckKind",
    "JournalEntry",
    "Violation",
    "check_acks",
    "check_journal",
    "check_log_file",
    "check_store",
    "group_by_key",
    "read_journal",
    "starts_empty",
    "trace_module",
]

_EPS = 1e-6

SPEC_REFS: dict[str, str] = {
    "NoLostAck": "specs/LostUpdate.tla!NoLostAck",
    "VersionContiguous": "specs/LostUpdate.tla!VersionContiguous",
    "OneAcceptPerVersion": "specs/LostUpdate.tla!OneAcceptPerVersion",
    "NoStaleEpochCommit": "specs/ZombieFencing.tla!NoStaleEpochCommit",
    "NoExpiredLeaseCommit": "specs/ZombieFencing.tla!NoExpiredLeaseCommit",
    "NoPutUnderLiveClaim": "specs/ZombieFencing.tla!NoPutUnderLiveClaim",
    "EpochMonotonic": "specs/ZombieFencing.tla!EpochMonotonic",
    "AtMostOneLiveHolder": "specs/ZombieFencing.tla!AtMostOneLiveHolder",
    "AtMostOneAcceptance": "specs/ClaimExclusivity.tla!AtMostOneAcceptance",
    "OldOrNewNeverMixed": "specs/CommitRecovery.tla!OldOrNewNeverMixed",
}
"""Invariant name -> ``spec!operator`` that defines it (TLA+'s module!name notation)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: which, where it is defined, the key, the journal index, why."""

    invariant: str
    spec: str
    key: str
    index: int | None
    detail: str

    def __str__(self) -> str:
        where = "" if self.index is None else f"[{self.index}]"
        return f"{self.invariant} ({self.spec}) {self.key}{where}: {self.detail}"


AckKind = Literal["put", "claim_commit", "claim", "reclaim", "fenced"]


@dataclass(frozen=True, slots=True)
class Ack:
    """What one call returned to its caller, with lease-clock times around the call.

    ``kind``: ``put`` (a claimless commit acknowledged at ``version``), ``claim_commit`` (a
    commit under the claim of ``owner`` at ``epoch``), ``claim`` (a grant of ``epoch`` to
    ``owner``), ``reclaim`` (returned ``epoch``), ``fenced`` (a commit rejected with
    ``FencedError``: its ``token`` must never appear in the journal).
    """

    kind: AckKind
    key: str
    token: str | None
    version: int | None
    epoch: int | None
    owner: str | None
    t_start: float
    t_end: float
    boot: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ack:
        """Parse one JSON record written by a worker; ``ValueError`` if malformed."""
        kind = d.get("kind")
        if kind not in ("put", "claim_commit", "claim", "reclaim", "fenced"):
            raise InvalidArgumentError(f"unknown ack kind {kind!r}")
        try:
            return cls(
                kind=kind,
                key=str(d["key"]),
                token=_opt_str(d.get("token")),
                version=_opt_int(d.get("version")),
                epoch=_opt_int(d.get("epoch")),
                owner=_opt_str(d.get("owner")),
                t_start=float(d["t_start"]),
                t_end=float(d["t_end"]),
                boot=str(d["boot"]),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidArgumentError(f"malformed ack record: {exc}") from None


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _opt_int(v: object) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidArgumentError(f"expected an int, got {v!r}")
    return v


def _violation(name: str, key: str, index: int | None, detail: str) -> Violation:
    return Violation(name, SPEC_REFS[name], key, index, detail)


def _lease(entry: JournalEntry) -> Lease | None:
    lease = getattr(entry, "lease", None)
    return lease if isinstance(lease, Lease) else None


def check_journal(events: Iterable[JournalEntry], *, complete: bool = True) -> list[Violation]:
    """Every invariant that the journal alone can decide, for every key in ``events``.

    ``events`` are in log order per key (keys may be interleaved). ``complete`` means each
    key's journal starts at its first event (no compaction); otherwise the first entry of a
    key is taken as given and only the transitions after it are checked.
    """
    out: list[Violation] = []
    for key, entries in group_by_key(events).items():
        out.extend(_check_key(key, entries, complete))
    return out


def _check_key(key: str, entries: Sequence[JournalEntry], complete: bool) -> list[Violation]:
    out: list[Violation] = []
    seen_versions: dict[int, int] = {}
    acceptances: list[int] = []
    prev: JournalEntry | None = None
    prev_version, prev_epoch = 0, 0
    prev_holder: str | None = None
    start = 0
    if not complete and entries:
        prev = entries[0]
        prev_version, prev_epoch, prev_holder = prev.version, prev.epoch, prev.holder
        start = 1
        if prev.op in COMMIT_OPS:
            seen_versions[prev.version] = 0
    for i in range(start, len(entries)):
        e = entries[i]
        commit = e.op in COMMIT_OPS
        # VersionContiguous (LostUpdate.tla): +1 per accepted commit, unchanged otherwise.
        want = prev_version + 1 if commit else prev_version
        if e.version != want:
            out.append(
                _violation(
                    "VersionContiguous", key, i, f"{e.op} at version {e.version}, expected {want}"
                )
            )
        # OneAcceptPerVersion (LostUpdate.tla): one accepted commit per version.
        if commit:
            if e.version in seen_versions:
                out.append(
                    _violation(
                        "OneAcceptPerVersion",
                        key,
                        i,
                        f"version {e.version} accepted again (first at "
                        f"[{seen_versions[e.version]}])",
                    )
                )
            else:
                seen_versions[e.version] = i
        # EpochMonotonic (ZombieFencing.tla): claim/reclaim create epoch + 1; every other
        # event keeps the epoch; so epochs never decrease.
        want_epoch = prev_epoch + 1 if e.op in EPOCH_BUMP_OPS else prev_epoch
        if e.epoch != want_epoch:
            out.append(
                _violation(
                    "EpochMonotonic", key, i, f"{e.op} at epoch {e.epoch} after epoch {prev_epoch}"
                )
            )
        # NoStaleEpochCommit (ZombieFencing.tla): a commit made under a claim lands only
        # if the claim's epoch is the key's epoch and its owner the holder.
        claim_epoch = tag(e.value, "claim_epoch") if commit else None
        if commit and claim_epoch is not None:
            owner = tag(e.value, "owner")
            if claim_epoch != prev_epoch or prev_holder != owner or e.holder != owner:
                out.append(
                    _violation(
                        "NoStaleEpochCommit",
                        key,
                        i,
                        f"commit under claim (epoch {claim_epoch}, owner {owner!r}) accepted while "
                        f"the key was at epoch {prev_epoch} held by {prev_holder!r}",
                    )
                )
        # AtMostOneLiveHolder (ZombieFencing.tla): a grant happens only when the previous
        # holder's lease has run out (grant time = new deadline - ttl on the lease clock).
        if e.op == "claim" and prev is not None and prev_holder is not None:
            old, new = _lease(prev), _lease(e)
            if old is not None and new is not None and old.boot == new.boot:
                granted_at = new.deadline - new.ttl
                if old.deadline > granted_at + _EPS:
                    out.append(
                        _violation(
                            "AtMostOneLiveHolder",
                            key,
                            i,
                            f"claim granted to {e.holder!r} while {prev_holder!r} held a lease "
                            f"live for {old.deadline - granted_at:.3f}s more",
                        )
                    )
        # AtMostOneAcceptance (ClaimExclusivity.tla): a task is accepted at most once.
        if commit and tag(e.value, "status") == "accepted":
            acceptances.append(i)
            if len(acceptances) > 1:
                out.append(
                    _violation(
                        "AtMostOneAcceptance",
                        key,
                        i,
                        f"task accepted again (first at [{acceptances[0]}])",
                    )
                )
        prev, prev_version, prev_epoch, prev_holder = e, e.version, e.epoch, e.holder
    return out


def check_acks(
    journal: Mapping[str, Sequence[JournalEntry]], acks: Iterable[Ack]
) -> list[Violation]:
    """The invariants that need what callers were told, against complete per-key journals."""
    out: list[Violation] = []
    index: dict[tuple[str, int], int] = {}
    tokens: dict[tuple[str, str], int] = {}
    for key, entries in journal.items():
        for i, e in enumerate(entries):
            if e.op in COMMIT_OPS:
                index[(key, e.version)] = i
                tok = tag(e.value, "token")
                if isinstance(tok, str):
                    tokens[(key, tok)] = i
    for a in acks:
        entries = journal.get(a.key, ())
        if a.kind in ("put", "claim_commit"):
            # NoLostAck (LostUpdate.tla): every acknowledged commit is in the journal.
            at = index.get((a.key, a.version if a.version is not None else -1))
            if at is None or tag(entries[at].value, "token") != a.token:
                out.append(
                    _violation(
                        "NoLostAck",
                        a.key,
                        at,
                        f"acknowledged {a.kind} {a.token} at version "
                        f"{a.version} is not in the journal",
                    )
                )
                continue
            e = entries[at]
            before = entries[at - 1] if at > 0 else None
            if a.kind == "claim_commit":
                # NoExpiredLeaseCommit (ZombieFencing.tla): the lease was live when the
                # commit was checked, which was after the call started.
                lease = _lease(e)
                if lease is None or lease.boot != a.boot or lease.deadline <= a.t_start:
                    out.append(
                        _violation(
                            "NoExpiredLeaseCommit",
                            a.key,
                            at,
                            f"commit by {a.owner!r} accepted though its lease "
                            f"{'is missing' if lease is None else 'ended before the call'}",
                        )
                    )
            else:
                # NoPutUnderLiveClaim (ZombieFencing.tla): a claimless put lands only when
                # no live claim is held (checked before the call returned).
                lease = _lease(before) if before is not None else None
                if (
                    before is not None
                    and before.holder is not None
                    and lease is not None
                    and lease.boot == a.boot
                    and lease.deadline > a.t_end + _EPS
                ):
                    out.append(
                        _violation(
                            "NoPutUnderLiveClaim",
                            a.key,
                            at,
                            f"claimless put accepted while {before.holder!r} held a live claim",
                        )
                    )
        elif a.kind == "claim":
            # AtMostOneLiveHolder (ZombieFencing.tla): the grant the caller got is the one
            # the journal holds.
            if not any(
                e.op == "claim" and e.epoch == a.epoch and e.holder == a.owner for e in entries
            ):
                out.append(
                    _violation(
                        "AtMostOneLiveHolder",
                        a.key,
                        None,
                        f"granted epoch {a.epoch} to {a.owner!r}: not in journal",
                    )
                )
        elif a.kind == "reclaim":
            # EpochMonotonic (ZombieFencing.tla): the epoch a reclaim returned exists.
            if not any(e.op == "reclaim" and e.epoch == a.epoch for e in entries):
                out.append(
                    _violation(
                        "EpochMonotonic",
                        a.key,
                        None,
                        f"reclaim returned epoch {a.epoch}: not in journal",
                    )
                )
        elif a.kind == "fenced" and a.token is not None and (a.key, a.token) in tokens:
            # NoStaleEpochCommit (ZombieFencing.tla): a fenced (zombie) write never lands.
            out.append(
                _violation(
                    "NoStaleEpochCommit",
                    a.key,
                    tokens[(a.key, a.token)],
                    f"write {a.token} was rejected with FencedError but is in the journal",
                )
            )
    return out


def check_log_file(path: str, key: str | None = None) -> list[Violation]:
    """OldOrNewNeverMixed (CommitRecovery.tla) on one raw log file.

    Every newline-terminated line must be one whole line (its CRC and JSON check out, and it
    belongs to the key); only bytes after the last newline may be a torn tail.
    """
    name = key if key is not None else path
    with open(path, "rb") as f:
        data = f.read()
    out: list[Violation] = []
    end = data.rfind(b"\n")
    for i, line in enumerate(data[: end + 1].splitlines()):
        try:
            state = decode_line(line, path)
        except CorruptStateError as exc:
            out.append(_violation("OldOrNewNeverMixed", name, i, f"bad line: {exc}"))
            continue
        if key is not None and state.key != key:
            out.append(
                _violation(
                    "OldOrNewNeverMixed", name, i, f"line of key {state.key!r} in this key's log"
                )
            )
    return out


def check_store(store_dir: str, acks: Iterable[Ack] = ()) -> list[Violation]:
    """Everything: raw files, journal structure and acknowledgements of one FileStore dir.

    A key whose log was compacted (its first line does not follow an empty key) has only the
    transitions after its first retained line checked, and acks older than that line are
    not looked up.
    """
    out: list[Violation] = []
    journal: dict[str, list[Any]] = {}
    for key, path in log_files(store_dir):
        bad = check_log_file(path, key)
        out.extend(bad)
        if not bad:
            journal[key] = list(keylog.iter_states(path))
    for key, entries in journal.items():
        out.extend(_check_key(key, entries, starts_empty(entries)))
    compacted = {k: e[0].version for k, e in journal.items() if not starts_empty(e)}
    out.extend(
        check_acks(
            journal,
            [
                a
                for a in acks
                if a.key not in compacted
                or (a.version is not None and a.version >= compacted[a.key])
            ],
        )
    )
    return out

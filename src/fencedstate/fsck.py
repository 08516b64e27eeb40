"""``fencedstate check DIR``: read a file store end to end and report what is wrong with it.

``check`` reads every log, intent and lock file without taking any lock and never writes,
unless ``quarantine=True``: then each damaged log is moved aside to ``<log>.damaged-<time>``
(never deleted) and replaced by a one-line marker that every reader and writer refuses with
``CorruptStateError``, so the key reads as damaged, never as empty, until the user either puts
back a good copy (``restore``), keeps the valid prefix of the log with its versions and epochs
(``salvage``), or resets the key, naming the damaged bytes' SHA-256 (``reset``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

from .core.keys import key_to_relpath, relpath_to_key, validate_key
from .errors import (
    CorruptStateError,
    FencedStateError,
    InvalidArgumentError,
    NotAStoreError,
    StorageError,
)
from .file import keylog, keystate
from .file.filestore import MARKER, check_marker
from .file.locking import KeyLocks
from .records import QUARANTINE_MARK, State, encode_state

_QUARANTINE_INFIX = ".damaged-"


@dataclass
class Damage:
    """One damaged log: its key, file, the byte offset of the first bad byte, and why."""

    key: str
    path: str
    offset: int
    reason: str
    sha256: str
    quarantined_to: str | None = None


@dataclass
class CheckReport:
    """What ``check`` found. ``clean`` is True when nothing needs the user's attention."""

    root: str
    keys: int = 0
    lines: int = 0
    torn_tails: list[tuple[str, int, int]] = field(default_factory=list)  # key, offset, bytes
    damaged: list[Damage] = field(default_factory=list)
    pending_intents: list[str] = field(default_factory=list)
    orphan_temps: list[str] = field(default_factory=list)
    permission_problems: list[tuple[str, str]] = field(default_factory=list)
    quarantined_keys: list[tuple[str, str]] = field(default_factory=list)  # key, aside file

    @property
    def clean(self) -> bool:
        """No damage, no permission problem, no key left quarantined."""
        return not (self.damaged or self.permission_problems or self.quarantined_keys)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of the report."""
        out = asdict(self)
        out["clean"] = self.clean
        return out


def check(path: str | os.PathLike[str], *, quarantine: bool = False) -> CheckReport:
    """Check the file store at ``path``; ``StorageError``/``CorruptStateError`` if it cannot."""
    root = os.path.realpath(os.fspath(path))
    _check_marker(root)
    report = CheckReport(root)
    uid = os.geteuid()
    _perm(report, root, True, uid)
    _perm(report, os.path.join(root, MARKER), False, uid)
    for name in os.listdir(root):
        if name.endswith(".tmp"):
            report.orphan_temps.append(os.path.join(root, name))
    data = os.path.join(root, "data")
    for sub in ("data", "locks"):
        if os.path.isdir(os.path.join(root, sub)):
            _walk_perms(report, os.path.join(root, sub), uid)
    txn = os.path.join(root, "txn")
    if os.path.isdir(txn):
        _walk_perms(report, txn, uid)
        for name in sorted(os.listdir(txn)):
            full = os.path.join(txn, name)
            if name.endswith(".json"):
                report.pending_intents.append(full)
            elif name.endswith(".tmp"):
                report.orphan_temps.append(full)
    for dirpath, dirnames, filenames in os.walk(data):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, data)
        for name in sorted(filenames + [d for d in dirnames if d.endswith(".jsonl")]):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if name.endswith(".tmp"):
                report.orphan_temps.append(full)
                continue
            key = relpath_to_key(rel)
            if key is None:
                continue
            report.keys += 1
            if os.path.isdir(full):
                report.damaged.append(Damage(key, full, 0, "a directory, not a log file", ""))
                continue
            _check_log(report, key, full, quarantine)
        dirnames[:] = [d for d in dirnames if not d.endswith(".jsonl")]
    return report


def _check_marker(root: str) -> None:
    try:
        check_marker(root)
    except (FileNotFoundError, NotADirectoryError):
        raise NotAStoreError(root) from None
    except OSError as exc:
        raise StorageError(None, f"cannot read the store marker in {root}: {exc}") from None


def _perm(report: CheckReport, path: str, is_dir: bool, uid: int) -> None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        report.permission_problems.append((path, f"cannot stat: {exc.strerror}"))
        return
    want = 0o700 if is_dir else 0o600
    mode = stat.S_IMODE(st.st_mode)
    if mode != want:
        report.permission_problems.append((path, f"mode {mode:04o}, expected {want:04o}"))
    if st.st_uid != uid:
        report.permission_problems.append((path, f"owned by uid {st.st_uid}, not {uid}"))


def _walk_perms(report: CheckReport, top: str, uid: int) -> None:
    _perm(report, top, True, uid)
    for dirpath, dirnames, filenames in os.walk(top):
        for d in dirnames:
            _perm(report, os.path.join(dirpath, d), True, uid)
        for f in filenames:
            _perm(report, os.path.join(dirpath, f), False, uid)


def _check_log(report: CheckReport, key: str, path: str, quarantine: bool) -> None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        report.damaged.append(Damage(key, path, 0, f"cannot read: {exc.strerror}", ""))
        return
    if data.startswith(QUARANTINE_MARK):
        report.quarantined_keys.append((key, _aside_of(data)))
        return
    found = scan(data, key, path)
    report.lines += found.lines
    if found.reason is None:
        if found.torn:
            report.torn_tails.append((key, len(data) - found.torn, found.torn))
        return
    damage = Damage(key, path, found.offset, found.reason, hashlib.sha256(data).hexdigest())
    if quarantine:
        damage.quarantined_to = _quarantine(report.root, key, path, data)
    report.damaged.append(damage)


class LogScan(NamedTuple):
    """What ``scan`` found in one log."""

    offset: int  # of the first bad byte (0 if none)
    reason: str | None  # why it is bad, None if the log is valid
    lines: int  # good lines
    torn: int  # bytes of a torn tail (a crash mid-write; not damage)


def scan(data: bytes, key: str, where: str) -> LogScan:
    """Read one log's bytes: where it goes bad and why, its good lines and torn tail."""
    result = keylog.scan_log(data, where, key)
    return LogScan(result.bad_offset or 0, result.reason, len(result.states), result.torn_bytes)


def _aside_of(marker: bytes) -> str:
    text = marker.decode(errors="replace").strip()
    return text.split(" at ", 1)[1].split(";", 1)[0] if " at " in text else "?"


def _quarantine(root: str, key: str, path: str, data: bytes) -> str:
    """Link the damaged log aside (never overwriting), then put the marker in its place."""
    stamp = _stamp()
    locks = KeyLocks(os.path.join(root, "locks"), 30.0)
    try:
        with locks.hold(key) as state_fd:
            with open(path, "rb") as f:
                if f.read() != data:
                    raise CorruptStateError(path, "log changed while being quarantined")
            aside = _link_aside(path, stamp)
            old_ino = os.stat(path).st_ino
            digest = hashlib.sha256(data).hexdigest()
            mark = (
                f"{QUARANTINE_MARK.decode()} by fencedstate check: the damaged log is at "
                f"{aside}; sha256 {digest}; put a good copy back with "
                f"'check --restore-from FILE KEY', keep its valid history with "
                f"'check --salvage KEY', or reset the key with "
                f"'check --reset KEY {digest}'\n"
            )
            _replace(path, mark.encode())
            # the old log lives on as the aside link: a store that kept it open must not take
            # its slot for the key's (its next commit sees no state, and opens the path again)
            keystate.clear(state_fd, old_ino)
    finally:
        locks.close()
    return aside


def _replace(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            keylog.write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    keylog.fsync_dir(os.path.dirname(path))


def restore(path: str | os.PathLike[str], source: str, key: str) -> None:
    """Put ``source`` (a whole, valid log of ``key``) in place of the key's damaged log.

    Refused unless the key's current log is damaged or quarantined: a healthy key is changed
    only through the store's own commits.
    """
    root = os.path.realpath(os.fspath(path))
    _check_marker(root)
    key = validate_key(key)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise StorageError(key, f"cannot read {source}: {exc.strerror}") from None
    found = scan(data, key, source)
    if found.reason is not None or found.lines == 0:
        raise InvalidArgumentError(
            f"{source} is not a valid log of {key!r}: {found.reason or 'empty'}"
        )
    log = os.path.join(root, "data", key_to_relpath(key))
    locks = KeyLocks(os.path.join(root, "locks"), 30.0)
    try:
        with locks.hold(key) as state_fd:
            _require_damaged(log, key)
            old_ino = os.stat(log).st_ino
            _replace(log, data)
            keystate.clear(state_fd, old_ino)
    finally:
        locks.close()


def reset(path: str | os.PathLike[str], key: str, sha256: str) -> str:
    """Make a damaged or quarantined key absent, if ``sha256`` names its damaged bytes.

    The damaged bytes are kept (moved aside, or already in the quarantine file); returns
    where they are.
    """
    with _damaged_key(path, key) as bad:
        if hashlib.sha256(bad.data).hexdigest() != sha256.lower():
            raise InvalidArgumentError(
                f"sha256 {sha256} does not match the damaged bytes of {key!r}: "
                "run 'fencedstate check' again and read them first"
            )
        aside = bad.aside or _link_aside(bad.log, _stamp())
        old_ino = os.stat(bad.log).st_ino
        os.unlink(bad.log)
        keylog.fsync_dir(os.path.dirname(bad.log))
        keystate.clear(bad.table, old_ino)  # a store that kept the log open must not use it
    return aside


@dataclass
class Salvage:
    """What ``salvage`` did: the key's version and epoch now (above every one it had), the valid
    lines kept, the damaged bytes dropped from the log, and where the whole damaged log was
    moved (nothing is deleted)."""

    key: str
    version: int
    epoch: int
    lines: int
    dropped_bytes: int
    aside: str


def salvage(path: str | os.PathLike[str], key: str) -> Salvage:
    """Keep the valid prefix of a damaged (or quarantined) key's log, with its versions and
    epochs; the whole damaged log is kept aside.

    One line is appended after the prefix (op ``reclaim``, actor ``fencedstate check``): the last
    good value at a version and an epoch above every one the prefix or the damaged part shows.
    A writer still holding a version or a claim from the lost part gets ``ConflictError`` or
    ``FencedError`` instead of matching a reused number (no ABA).

    Runs under the key's lock (and its sync lock for the shared state), so concurrent writers
    wait; the key's shared state (end, watermark) is derived again from the new log, as a
    compaction does. The key continues from its last good version: it never goes back to 1.
    ``InvalidArgumentError`` if the key is not damaged or not even its first line is valid
    (then only ``reset`` can help).
    """
    with _damaged_key(path, key) as bad:
        log, damaged, state_fd = bad.log, bad.data, bad.table
        found = keylog.scan_log(damaged, log, key)
        if found.reason is None or not found.states or not found.bad_offset:
            raise InvalidArgumentError(
                f"key {key!r} has no valid line before its damage: nothing to salvage "
                "(use --reset KEY SHA256 to make it absent)"
            )
        aside = bad.aside or _link_aside(log, _stamp())
        moved = _moved_past(found.states[-1], damaged[found.bad_offset :])
        kept = damaged[: found.bad_offset] + encode_state(moved)
        old_ino = os.stat(log).st_ino
        _replace(log, kept)  # fsynced, renamed, directory fsynced
        with bad.locks.hold_sync(key):
            keystate.clear(state_fd, old_ino)  # a store that kept the old log open reopens
            st = os.stat(log)
            gen = keystate.last_gen(state_fd, st.st_ino)
            end = len(kept)
            keystate.write_both(
                state_fd, keystate.KeyState(st.st_ino, end, gen + 1, end, end, False, end)
            )
    return Salvage(
        key,
        moved.version,
        moved.epoch,
        len(found.states),
        len(damaged) - found.bad_offset,
        aside,
    )


_NUMBERS = re.compile(rb'"(version|epoch)":(\d{1,19})\b')


def _moved_past(last: State, lost: bytes) -> State:
    """``last`` as a reclaim at a version and epoch above any number in ``last`` or ``lost``
    (the damaged bytes: read leniently, every ``"version":N`` and ``"epoch":N`` counts)."""
    version, epoch = last.version, last.epoch
    for name, number in _NUMBERS.findall(lost):
        if name == b"version":
            version = max(version, int(number))
        else:
            epoch = max(epoch, int(number))
    now = time.time()
    return replace(
        last,
        op="reclaim",
        version=version + 1,
        epoch=epoch + 1,
        holder=None,
        lease=None,
        actor="fencedstate check",
        at=now,
        idem=None,
        txn=None,
    )


class _Damaged(NamedTuple):
    log: str  # the key's log path
    locks: KeyLocks  # holding the key lock
    table: keystate.Table  # the shared state table
    data: bytes  # the damaged bytes
    aside: str  # where they already lie aside ("" if not yet)


@contextmanager
def _damaged_key(path: str | os.PathLike[str], key: str) -> Iterator[_Damaged]:
    """Hold ``key``'s lock over its damaged (or quarantined) log."""
    root = os.path.realpath(os.fspath(path))
    _check_marker(root)
    key = validate_key(key)
    log = os.path.join(root, "data", key_to_relpath(key))
    locks = KeyLocks(os.path.join(root, "locks"), 30.0)
    try:
        with locks.hold(key) as state_fd:
            current = _require_damaged(log, key)
            if current.startswith(QUARANTINE_MARK):
                aside = _aside_of(current)
                with open(aside, "rb") as f:
                    data = f.read()
                yield _Damaged(log, locks, state_fd, data, aside)
            else:
                yield _Damaged(log, locks, state_fd, current, "")
    finally:
        locks.close()


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _link_aside(log: str, stamp: str) -> str:
    """Hard-link the damaged log beside itself (never overwriting another); the link's path."""
    n = 0
    while True:
        aside = f"{log}{_QUARANTINE_INFIX}{stamp}" + (f".{n}" if n else "")
        try:
            os.link(log, aside)
            return aside
        except FileExistsError:
            n += 1


def _require_damaged(log: str, key: str) -> bytes:
    try:
        with open(log, "rb") as f:
            current = f.read()
    except FileNotFoundError:
        raise InvalidArgumentError(f"key {key!r} has no log: nothing to restore") from None
    if current.startswith(QUARANTINE_MARK):
        return current
    if scan(current, key, log).reason is None:
        raise InvalidArgumentError(f"key {key!r} is not damaged: refusing to replace its log")
    return current


def render(report: CheckReport) -> str:
    """The report as text: a summary and an aligned table of findings."""
    rows: list[tuple[str, str, str, str]] = []
    for d in report.damaged:
        what = f"damaged; moved to {d.quarantined_to}" if d.quarantined_to else "damaged"
        rows.append((what, d.key, str(d.offset), f"{d.reason} (sha256 {d.sha256})"))
    for key, aside in report.quarantined_keys:
        rows.append(("quarantined", key, "-", f"damaged bytes at {aside}"))
    for p, why in report.permission_problems:
        rows.append(("permissions", p, "-", why))
    for key, offset, n in report.torn_tails:
        rows.append(("torn tail (harmless)", key, str(offset), f"{n} bytes"))
    for p in report.pending_intents:
        rows.append(("pending intent", p, "-", "completed by the next store operation"))
    for p in report.orphan_temps:
        rows.append(("orphan temp file", p, "-", "left by a killed writer"))
    out = [
        f"store {report.root}: {report.keys} keys, {report.lines} lines, "
        f"{len(report.damaged)} damaged, {len(report.torn_tails)} torn tails, "
        f"{len(report.pending_intents)} pending intents, {len(report.orphan_temps)} orphan "
        f"temp files, {len(report.permission_problems)} permission problems: "
        + ("clean" if report.clean else "DAMAGE FOUND")
    ]
    if rows:
        head = ("finding", "key/file", "offset", "detail")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
        for r in [head, *rows]:
            out.append(
                "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
            )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """``fencedstate check``: exit 0 clean, 1 damage found, 2 could not run."""
    parser = argparse.ArgumentParser(prog="fencedstate check", description=__doc__)
    parser.add_argument("dir")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--quarantine",
        action="store_true",
        help="move damaged logs aside (never deleted); the key reads as damaged",
    )
    parser.add_argument(
        "--restore-from",
        nargs=2,
        metavar=("FILE", "KEY"),
        help="put a good copy of KEY's log back in place of a damaged one",
    )
    parser.add_argument(
        "--salvage",
        metavar="KEY",
        help="keep the valid prefix of KEY's damaged log, versions and epochs (the rest: aside)",
    )
    parser.add_argument(
        "--reset",
        nargs=2,
        metavar=("KEY", "SHA256"),
        help="make a damaged KEY absent; SHA256 names its damaged bytes",
    )
    args = parser.parse_args(argv)
    try:
        if args.restore_from:
            restore(args.dir, args.restore_from[0], args.restore_from[1])
            print(f"restored {args.restore_from[1]!r} from {args.restore_from[0]}")
            return 0
        if args.salvage:
            kept = salvage(args.dir, args.salvage)
            if args.json:
                print(json.dumps(asdict(kept)))
            else:
                print(
                    f"salvaged {kept.key!r}: kept {kept.lines} valid lines; the key is now at "
                    f"version {kept.version}, epoch {kept.epoch} (above everything the damaged "
                    f"part held); the damaged log is kept at {kept.aside}"
                )
            return 0
        if args.reset:
            aside = reset(args.dir, args.reset[0], args.reset[1])
            print(f"reset {args.reset[0]!r}; its damaged bytes are kept at {aside}")
            return 0
        report = check(args.dir, quarantine=args.quarantine)
    except FencedStateError as exc:
        from .cli.errors import report as report_error

        return report_error(exc, as_json=args.json, prog="fencedstate check")
    except OSError as exc:
        print(f"fencedstate check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=2) if args.json else render(report))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())

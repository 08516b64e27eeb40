"""Repairs of a file store's damaged key log (``fencedstate check``'s ``--quarantine``,
``--restore-from``, ``--reset`` and ``--salvage``), each under the key's lock.

The damaged bytes are never deleted: they are hard-linked aside to ``<log>.damaged-<time>``
first. A repair that puts another file (or none) at the log's path clears the old log's state
slot, so a store that kept the old log open opens the path again instead of committing to the
file set aside.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..core.keys import key_to_relpath, validate_key
from ..errors import CorruptStateError, InvalidArgumentError, NotAStoreError, StorageError
from ..records import QUARANTINE_MARK, State, decode_line, encode_state
from . import keylog, keystate
from .layout import check_marker
from .locking import KeyLocks

QUARANTINE_INFIX = ".damaged-"


def check_store_marker(root: str) -> None:
    """``NotAStoreError`` unless ``root`` holds a file store's marker."""
    try:
        check_marker(root)
    except (FileNotFoundError, NotADirectoryError):
        raise NotAStoreError(root) from None
    except OSError as exc:
        raise StorageError(None, f"cannot read the store marker in {root}: {exc}") from None


def aside_of(marker: bytes) -> str:
    """Where a quarantine marker says the damaged log lies."""
    text = marker.decode(errors="replace").strip()
    return text.split(" at ", 1)[1].split(";", 1)[0] if " at " in text else "?"


def quarantine(root: str, key: str, path: str, data: bytes) -> str:
    """Link the damaged log aside (never overwriting), then put the marker in its place."""
    stamp = _stamp()
    locks = KeyLocks(os.path.join(root, "locks"), 30.0)
    try:
        with locks.hold(key) as state_fd:
            if keylog.read_regular(path) != data:
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
    check_store_marker(root)
    key = validate_key(key)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise InvalidArgumentError(
            f"cannot read {source} ({exc.strerror}): pass the path of a good copy of the log "
            f"of {key!r} (e.g. a backup's data/{key_to_relpath(key)})"
        ) from None
    except OSError as exc:
        raise StorageError(key, f"cannot read {source}: {exc.strerror}") from None
    found = keylog.scan_log(data, source, key)
    if found.reason is not None or not found.states:
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
    The last good value is the newest intact line's: when the damage is a line further back,
    the lines after it still hold the value reads returned, and it is carried forward (also
    when the first line is the bad one: the log is then that one line).
    A writer still holding a version or a claim from the lost part gets ``ConflictError`` or
    ``FencedError`` instead of matching a reused number (no ABA).

    Runs under the key's lock (and its sync lock for the shared state), so concurrent writers
    wait; the key's shared state (end, watermark) is derived again from the new log, as a
    compaction does. The key continues from its last good version: it never goes back to 1.
    ``InvalidArgumentError`` if the key is not damaged or no line of it is intact (then only
    ``reset`` can help).
    """
    with _damaged_key(path, key) as bad:
        log, damaged, state_fd = bad.log, bad.data, bad.table
        found = keylog.scan_log(damaged, log, key)
        valid = found.bad_offset if found.reason is not None and found.states else 0
        newest = _newest_intact(found.states[-1] if valid else None, damaged[valid:], log, key)
        if found.reason is None or newest is None:
            raise InvalidArgumentError(
                f"key {key!r} has no intact line: nothing to salvage "
                "(use --reset KEY SHA256 to make it absent)"
            )
        aside = bad.aside or _link_aside(log, _stamp())
        lost = damaged[valid:]
        moved = _moved_past(newest, lost)
        kept = damaged[:valid] + encode_state(moved)
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
        len(found.states) if valid else 0,
        len(lost),
        aside,
    )


_NUMBERS = re.compile(rb'"(version|epoch)":(\d{1,19})\b')


def _newest_intact(last: State | None, lost: bytes, where: str, key: str) -> State | None:
    """The newest state: ``last`` (the prefix's, None if it has none), or a later intact line
    of ``key`` among the ``lost`` bytes (each line checked alone: its checksum and its key)
    with a higher version."""
    newest = last
    for line in lost.split(b"\n"):
        try:
            state = decode_line(line.strip(keylog.PAD), where)
            keylog.check_key(state, key, where)
        except CorruptStateError:
            continue
        if newest is None or state.version > newest.version:
            newest = state
    return newest


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
    check_store_marker(root)
    key = validate_key(key)
    log = os.path.join(root, "data", key_to_relpath(key))
    locks = KeyLocks(os.path.join(root, "locks"), 30.0)
    try:
        with locks.hold(key) as state_fd:
            current = _require_damaged(log, key)
            if current.startswith(QUARANTINE_MARK):
                aside = aside_of(current)
                data = keylog.read_regular(aside)
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
        aside = f"{log}{QUARANTINE_INFIX}{stamp}" + (f".{n}" if n else "")
        try:
            os.link(log, aside)
            return aside
        except FileExistsError:
            n += 1


def _require_damaged(log: str, key: str) -> bytes:
    try:
        current = keylog.read_regular(log)  # never follows a symlink, never waits on a FIFO
    except FileNotFoundError:
        raise InvalidArgumentError(f"key {key!r} has no log: nothing to repair") from None
    except CorruptStateError as exc:
        raise InvalidArgumentError(
            f"{log} is {exc.detail.split(',')[0]}, not a log file: check cannot repair it; move "
            f"it out of data/ by hand (the key then reads as absent), or put a good copy of the "
            f"key's log there"
        ) from None
    if current.startswith(QUARANTINE_MARK):
        return current
    if keylog.scan_log(current, log, key).reason is None:
        raise InvalidArgumentError(f"key {key!r} is not damaged: refusing to replace its log")
    return current

"""The store directory: its layout, its marker and the checks made when it is opened.

Layout (format 4; formats 1 to 3 still open and are moved on: 1 and 2 had a lock file per
key, 3 logs without padding, which format 4 reads as they are)::

    DIR/fencedstate.json      store marker with the format version
    DIR/data/<key>.jsonl      one append-only JSON-lines log per key (see ``keylog``)
    DIR/locks/stripe-NN.lock  64 lock files; a key's locks are two bytes of one (``locking``)
    DIR/locks/state-N.tbl     the shared state of every log, by inode (``keystate``)
    DIR/txn/<id>.json         intents of multi-key commits in flight (normally empty)
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from contextlib import suppress

from ..errors import CorruptStateError, InsecureStoreError, NotAStoreError
from . import keylog
from .openlog import storage_error

FORMAT_VERSION = 4
READABLE_FORMATS = (1, 2, 3, 4)  # every format's lines are the same; 4 pads logs (``keylog``)
MARKER = "fencedstate.json"
_MARKER_DATA = {"format": FORMAT_VERSION, "kind": "fencedstate-filestore"}  # what it holds


def check_marker(root: str) -> int:
    """The store marker's format (checked); ``FileNotFoundError`` if ``root`` has none,
    ``CorruptStateError`` (with advice on the marker, not on key logs) if it is damaged or
    from a newer release."""
    marker = os.path.join(root, MARKER)
    with open(marker, "rb") as f:
        try:
            meta = json.load(f)
        except (ValueError, UnicodeDecodeError) as exc:
            raise marker_error(
                root, f"the store marker is damaged (does not parse: {exc})"
            ) from None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if type(fmt) is int and fmt > FORMAT_VERSION:
        raise marker_error(
            root,
            f"unsupported store format {fmt}: the store was written by a newer fencedstate "
            f"(this one reads formats {READABLE_FORMATS[0]} to {FORMAT_VERSION})",
            newer=True,
        )
    if fmt not in READABLE_FORMATS:
        raise marker_error(root, f"the store marker is damaged (unsupported store format {meta!r})")
    return int(meta["format"])


def marker_error(root: str, detail: str, *, newer: bool = False) -> CorruptStateError:
    """``CorruptStateError`` for the store marker of ``root``, advising what restores it (the
    marker only names the format; no key log was read or changed)."""
    marker = os.path.join(root, MARKER)
    if newer:
        advice = "Open the store with the newer fencedstate that wrote it; nothing was changed."
    else:
        advice = (
            f"{marker} only names the store's format ({json.dumps(_MARKER_DATA)}); no key "
            f"was read or changed. Restore it from a backup, or remove it and open the store "
            f"once from Python (fencedstate.open_store({root!r}).close()), which writes a new "
            f"one; format {FORMAT_VERSION} reads the logs of every earlier format. "
            f"Then run `fencedstate check {root}`."
        )
    return CorruptStateError(marker, detail).advise(advice)  # the class's is about key logs


def _store_holding(root: str) -> tuple[str, str] | None:
    """(store, "data" / "locks" / "txn") when ``root`` lies in one of a store's own
    directories, else None."""
    child = os.path.abspath(root)
    parent = os.path.dirname(child)
    while parent != child:
        sub = os.path.basename(child)
        if sub in ("data", "locks", "txn") and os.path.exists(os.path.join(parent, MARKER)):
            return parent, sub
        child, parent = parent, os.path.dirname(parent)
    return None


def prepare(root: str, durable: bool, trust_owner: bool) -> None:
    """Create or check the store directory and its marker."""
    if not os.path.exists(os.path.join(root, MARKER)):
        host = _store_holding(root)
        if host is not None:
            raise NotAStoreError(
                root,
                f"it lies inside {host[1]}/ of the store at {host[0]}, whose files it would "
                "read as damaged keys: choose a directory outside that store",
            )
    try:
        created = keylog.make_dirs(root)
        if durable:  # a commit acknowledged in a new store must not lose the store's entry
            for directory in created:
                keylog.fsync_dir(os.path.dirname(directory) or ".")
        st = os.stat(root)
    except FileExistsError:
        raise NotAStoreError(root, "a file, not a directory") from None
    except NotADirectoryError:
        raise NotAStoreError(root, "a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise storage_error(None, f"opening store {root}", exc) from None
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise InsecureStoreError(None, f"{root} is world-writable: anyone could forge state")
    if st.st_uid != os.geteuid() and not trust_owner:
        raise InsecureStoreError(
            None,
            f"{root} is owned by uid {st.st_uid}, not by this user "
            "(pass trust_owner=True if that is intended)",
        )
    marker = os.path.join(root, MARKER)
    try:
        if check_marker(root) < FORMAT_VERSION:
            # The logs of formats 1 to 3 are read as they are (the shared state of 1 and 2 is
            # derived again from the logs); the marker moves on so that an older release, which
            # would lock other files (1, 2) or take padding for damage (3), refuses the store,
            # and the lock files of 1 and 2 go.
            _write_marker(root, marker, durable)
            _drop_old_lock_files(os.path.join(root, "locks"))
    except FileNotFoundError:
        # Only our own names may be there (other processes may be creating it right now).
        if any(
            n not in ("data", "locks", "txn") and not n.startswith(MARKER) for n in os.listdir(root)
        ):
            raise NotAStoreError(
                root,
                "not empty, and no fencedstate.json: a store is made in a new or empty directory",
            ) from None
        _write_marker(root, marker, durable)
    txn = os.path.join(root, "txn")  # created on demand by multi-key commits
    if os.path.islink(txn):
        raise InsecureStoreError(None, f"{txn} must be a real directory, not a symlink")
    made = False
    for sub in ("data", "locks"):
        path = os.path.join(root, sub)
        try:
            os.mkdir(path, 0o700)
            made = True
        except FileExistsError:
            pass
        except OSError as exc:
            if not os.path.isdir(path):
                raise storage_error(None, f"creating {path}", exc) from None
        if os.path.islink(path) or not os.path.isdir(path):
            raise InsecureStoreError(None, f"{path} must be a real directory, not a symlink")
    if made and durable:  # a new log's directory chain is synced up to data/ only (``openlog``)
        try:
            keylog.fsync_dir(root)
        except OSError as exc:
            raise storage_error(None, f"syncing {root}", exc) from None


def _drop_old_lock_files(locks: str) -> None:
    """Remove the per-key lock files of formats 1 and 2 (``<sha1>.lock``, ``<sha1>.sync``)."""
    try:
        names = os.listdir(locks)
    except FileNotFoundError:
        return
    for name in names:
        stem, dot, ext = name.partition(".")
        if dot and ext in ("lock", "sync") and len(stem) == 40:
            with suppress(OSError):
                os.unlink(os.path.join(locks, name))


def _write_marker(root: str, marker: str, durable: bool) -> None:
    # One name per writer: threads of one process opening a new store at once must not
    # rename each other's file away (found by CrewAI's own flow-persistence tests).
    tmp = f"{marker}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_MARKER_DATA, f)
            f.write("\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, marker)
        if durable:
            keylog.fsync_dir(root)
    except OSError as exc:
        raise storage_error(None, f"creating store marker in {root}", exc) from None

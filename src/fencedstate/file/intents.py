"""Multi-key commits on the file store: a durable intent in ``txn/`` makes them all or nothing.

A commit of several changed keys writes ``txn/<id>.json`` (every key's new line and the
version it follows) and syncs it before the first key is written; once every line is durable
it removes the intent, before the key locks go. A writer killed in between leaves the intent,
and the next operation on the store rolls the commit forward (``Intents.recover``).
specs/MultiKeyCommit.tla models it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any

from ..core.backend import StepMany
from ..core.clock import Clock
from ..errors import CorruptStateError, FencedStateError, OutcomeUnknownError, StorageError
from ..records import State, decode_line, encode_state
from . import keylog
from .locking import KeyLocks
from .openlog import OpenLog, unlink_quietly

_OpenLogFn = Callable[[str], OpenLog]


class Intents:
    """The store's ``txn/`` directory, which exists only while a multi-key commit is in flight
    (or its writer died)."""

    def __init__(self, root: str, durable: bool, locks: KeyLocks) -> None:
        self.root = root
        self.dir = os.path.join(root, "txn")
        self._durable = durable
        self._locks = locks

    def pending(self) -> bool:
        """True if an intent is there. The common case, checked before every read and commit,
        is one failed ``access``."""
        if not os.access(self.dir, os.F_OK):  # no exception raised on the common path
            return False
        try:
            with os.scandir(self.dir) as it:
                return any(e.name.endswith(".json") for e in it)
        except FileNotFoundError:
            return False

    def commit(
        self, keys: list[str], step: StepMany, clock: Clock, open_log: _OpenLogFn
    ) -> dict[str, State]:
        """Actions PutCommit (and WriteIntent, SyncIntent, Unlink): the multi-key commit,
        under the keys' locks (the caller holds them, and has checked ``pending``);
        ``open_log`` opens a key's log under a lock the caller holds."""
        logs: dict[str, OpenLog] = {}
        try:
            currents: dict[str, State] = {}
            for key in keys:
                logs[key] = open_log(key)  # closed by the finally even if the read fails
                currents[key] = logs[key].read_tail()
            try:
                new = step(currents, clock)  # Check
            except FencedStateError:  # a refusal is answered once what it saw is durable
                for log in logs.values():
                    log.wait_durable()
                raise
            changed = _changed(currents, new)
            if not changed:
                for log in logs.values():
                    log.wait_durable()
                return currents | new
            if len(changed) == 1:  # nothing to make atomic across keys: no intent
                intent = None
            else:
                txn_id = uuid.uuid4().hex
                changed = {k: replace(s, txn=txn_id) for k, s in changed.items()}
                intent = self._write(txn_id, currents, changed)
            try:
                for key, state in changed.items():
                    logs[key].write(state)
                for log in logs.values():  # under the key locks: all visible, or none yet
                    log.wait_durable()
            except (OSError, StorageError) as exc:
                if intent is None:
                    raise
                # The intent is durable: recovery will roll the commit forward on all keys.
                raise OutcomeUnknownError(
                    keys[0],
                    f"multi-key commit failed after its intent was durable ({exc}); "
                    "the next operation on the store completes it: read to confirm",
                ) from None
            if intent is not None:
                # Before the locks go; if it fails, recovery finds the intent already applied.
                unlink_quietly(intent)
                self._drop_dir()
            return currents | changed
        finally:
            for log in logs.values():
                log.close()

    def _drop_dir(self) -> None:
        """Remove txn/ once empty; another writer's intent keeps it (ENOTEMPTY is fine)."""
        with suppress(OSError):
            os.rmdir(self.dir)

    def _write(self, txn_id: str, currents: dict[str, State], changed: dict[str, State]) -> str:
        """Actions WriteIntent, SyncIntent: the intent, durable before any key is written."""
        intent = {
            "txn": txn_id,
            "keys": {
                k: {
                    "prev_version": currents[k].version,
                    "prev_epoch": currents[k].epoch,
                    "line": encode_state(s).decode(),
                }
                for k, s in changed.items()
            },
        }
        path = os.path.join(self.dir, f"{txn_id}.json")
        tmp = path + ".tmp"
        while True:  # txn/ may be removed by a finishing writer between mkdir and open
            try:
                os.mkdir(self.dir, 0o700)
                if self._durable:
                    keylog.fsync_dir(self.root)
            except FileExistsError:
                pass
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                break
            except FileNotFoundError:
                continue
        try:
            try:
                keylog.write_all(fd, json.dumps(intent).encode())
                if self._durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except BaseException:
            unlink_quietly(tmp)  # a failed intent never became visible: leave no trace
            raise
        if self._durable:
            keylog.fsync_dir(self.dir)
        return path

    def recover(self, open_log: _OpenLogFn, history: Callable[[str], list[State]]) -> None:
        """Actions RecoverLock, Redo: finish multi-key commits whose writer died after its
        intent became durable (``history`` reads a key's retained states)."""
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.endswith(".json"))
        except FileNotFoundError:
            return
        for name in names:
            path = os.path.join(self.dir, name)
            try:
                with open(path, "rb") as f:
                    intent = json.load(f)
                keys = sorted(intent["keys"])
            except FileNotFoundError:
                continue  # finished by its writer or another recoverer
            except (ValueError, KeyError, TypeError) as exc:
                raise CorruptStateError(path, f"unreadable commit intent: {exc}") from None
            with self._locks.hold_many(keys):
                if not os.path.exists(path):
                    continue
                for key in keys:
                    _redo(open_log(key), history, intent["txn"], intent["keys"][key])
                os.unlink(path)
                if self._durable:
                    keylog.fsync_dir(self.dir)
        self._drop_dir()


def _changed(currents: Mapping[str, State], new: Mapping[str, State]) -> dict[str, State]:
    """The keys whose state the step replaced (it returns the current object for the others)."""
    return {k: s for k, s in new.items() if s is not currents[k]}


def _redo(
    log: OpenLog, history: Callable[[str], list[State]], txn_id: str, entry: dict[str, Any]
) -> None:
    """Action Redo: write the intent's line to one key unless it is there already."""
    try:
        current = log.read_tail()
        if current.txn == txn_id:
            log.wait_durable()
            return
        if current.version > entry["prev_version"]:
            # An intent whose unlink was lost (power cut) can come back after its keys moved
            # on. Keys only move on after pending intents are applied, so the line after
            # prev_version must be this commit's (or compacted away).
            for old in history(log.key):
                if old.version == entry["prev_version"] + 1 and old.op == "put":
                    if old.txn == txn_id:
                        return
                    raise CorruptStateError(log.path, f"commit {txn_id} was overtaken")
            return
        if (current.version, current.epoch) != (entry["prev_version"], entry["prev_epoch"]):
            raise CorruptStateError(log.path, f"key moved on before commit {txn_id} finished")
        line = entry["line"].encode()
        decode_line(line.rstrip(b"\n"), log.path)
        log.write_line(line)
        log.wait_durable()
    finally:
        log.close()

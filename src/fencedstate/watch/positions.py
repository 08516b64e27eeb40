"""What the backends' watch feeds share: cursors, a position per key, reopening a broken
stream, and (PostgreSQL, Redis) a connection of the feed's own that brings notes of commits."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import time
import zlib
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from ..core import backoff
from ..errors import InvalidArgumentError, StorageError
from ..records import State
from .feed import WatchFeed
from .values import Change, change_of, gap

P = TypeVar("P")

REOPEN_FOR = 60.0  # seconds of failed reconnects before a poll raises StorageError
_CURSOR_TAG = "fsw1."


def encode_cursor(data: dict[str, Any]) -> str:
    """An opaque cursor string for ``data`` (JSON, compressed, URL-safe)."""
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)
    return _CURSOR_TAG + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: object, backend: str, prefix: str, store_id: str | None = None, label: str = ""
) -> dict[str, Any]:
    """The data of a cursor made by ``encode_cursor`` for a watch of ``backend`` (of the store
    ``store_id``, when given) that covers ``prefix``; ``InvalidArgumentError`` for any other."""
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_TAG):
        raise InvalidArgumentError("since must be a cursor from a Change or a watch (a str)")
    body = cursor[len(_CURSOR_TAG) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        data = json.loads(zlib.decompress(raw))
    except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError):
        raise InvalidArgumentError("since is not a watch cursor (damaged or cut?)") from None
    if not isinstance(data, dict) or data.get("b") != backend:
        raise InvalidArgumentError(f"since is not a cursor of a {backend} store")
    old = data.get("p")  # a cursor resumes a watch of its own prefix or of a narrower one
    if not isinstance(old, str) or not prefix.startswith(old):
        raise InvalidArgumentError(
            f"since is a cursor of a watch of prefix {old!r}, which does not cover {prefix!r}"
        )
    if store_id is not None and data.get("s") != store_id:
        raise InvalidArgumentError(f"since is a cursor of another {label} store")
    return data


def reopen(open_: Callable[[], None], broken: tuple[type[BaseException], ...]) -> None:
    """Call ``open_`` until it does not raise ``broken``, pausing between tries (backoff.py);
    after ``REOPEN_FOR`` seconds the failure is raised as a ``StorageError``."""
    deadline = time.monotonic() + REOPEN_FOR
    for attempt in itertools.count():
        try:
            open_()
            return
        except broken as exc:
            if time.monotonic() > deadline:
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(None, f"watch cannot reconnect: {exc}") from None
            time.sleep(backoff.delay(attempt, first=0.05, cap=2.0))


class KeyedFeed(WatchFeed, Generic[P]):
    """A feed with a position per key (``_pos``): a poll takes in what its descriptors brought
    (``_collect`` marks keys dirty), then reads each dirty key's journal after its position."""

    def __init__(self, prefix: str, exact: bool) -> None:
        self._prefix = prefix
        self._exact = exact
        self._pos: dict[str, P] = {}
        self._dirty: set[str] = set()
        self._closed = False

    def covers(self, key: str) -> bool:
        """Is ``key`` watched (the key itself, or one under the prefix)?"""
        return key == self._prefix if self._exact else key.startswith(self._prefix)

    @abstractmethod
    def _collect(self) -> None:
        """Take in what the descriptors brought: mark the keys that may have moved dirty."""

    @abstractmethod
    def _read_key(self, key: str) -> list[Change]:
        """The key's durable changes after its position (moving it; ``_report``)."""

    def poll(self) -> list[Change]:
        if self._closed:
            return []
        self._collect()
        if self._closed:
            return []
        out: list[Change] = []
        for key in sorted(self._dirty):
            out.extend(self._read_key(key))
        self._dirty.clear()
        return out

    def _report(
        self, key: str, entries: Sequence[tuple[State, P]], gap_at: P | None
    ) -> list[Change]:
        """``key``'s journal ``entries`` (state, position after it) as changes, in order; first
        a gap at position ``gap_at`` when events before them may be gone unseen."""
        out: list[Change] = []
        if entries and gap_at is not None:
            self._pos[key] = gap_at
            out.append(gap(key, entries[0][0].version, self.cursor))
        for state, pos in entries:
            self._pos[key] = pos
            out.append(change_of(state, self.cursor))
        return out


class SeqFeed(KeyedFeed[int]):
    """A feed whose positions are the last journal ``seq`` reported per key, told of commits by
    ``(key, seq)`` notes on a connection of its own (``_listen``; ``filenos`` is its socket).

    The connection is opened before the keys' seqs are read, so nothing falls in between; when
    it breaks it is opened again and every key's seq compared with its position: whatever
    committed meanwhile is read from the journal.
    """

    backend: ClassVar[str]  # the cursor's "b"
    label: ClassVar[str]  # the backend's name in messages
    broken: ClassVar[tuple[type[BaseException], ...]]  # what a broken connection raises

    def __init__(self, store_id: str, prefix: str, exact: bool, since: str | None) -> None:
        self._conn: Any = None
        self._store_id = store_id
        super().__init__(prefix, exact)
        old: dict[str, Any] | None = None
        if since is not None:
            old = decode_cursor(since, self.backend, prefix, store_id, self.label).get("k", {})
            if not isinstance(old, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in old.values()
            ):
                raise InvalidArgumentError("since is not a watch cursor (damaged?)")
        self._listen()  # before reading where the keys are: nothing falls in between
        try:
            if old is None:
                self._pos = self._current_seqs()
            else:
                self._pos = {k: v for k, v in old.items() if self.covers(k)}
                self._catch_up()
        except BaseException:
            self.close()
            raise

    @abstractmethod
    def _listen(self) -> None:
        """Open the connection (``_conn``) and subscribe: notes flow from here on."""

    @abstractmethod
    def _drain(self) -> None:
        """Read the notes the connection holds (without blocking), each through ``_note``."""

    @abstractmethod
    def _current_seqs(self) -> dict[str, int]:
        """Every watched key's current journal seq."""

    @abstractmethod
    def _hang_up(self) -> None:
        """Close the connection, if open (``_conn`` None)."""

    @property
    def cursor(self) -> str:
        data = {"b": self.backend, "s": self._store_id, "p": self._prefix, "k": self._pos}
        return encode_cursor(data)

    def _note(self, key: str, seq: int) -> None:
        if self.covers(key) and seq > self._pos.get(key, 0):
            self._dirty.add(key)

    def _catch_up(self) -> None:
        """Mark every key whose journal moved past its position."""
        for key, seq in self._current_seqs().items():
            self._note(key, seq)

    def _collect(self) -> None:
        if self._conn is None:
            return
        try:
            self._drain()
        except self.broken:
            if self._closed:  # closed by another task while this poll ran: stay closed
                return
            self._hang_up()
            reopen(self._listen, self.broken)
            self._catch_up()

    def _release(self) -> None:
        self._hang_up()

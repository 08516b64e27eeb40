"""``FencedCheckpointSaver``: a LangGraph checkpointer that never forks a thread.

Layout under ``<prefix>/<thread>/`` (every part escaped by ``encode_segment``):

* ``head``: ``{"thread_id": ..., "heads": {checkpoint_ns: {"id": ..., "parent": ...}}}``, the
  latest checkpoint of each namespace. This is the key a runner claims, and every head move is
  a claim-fenced compare-and-set on it.
* ``cp/<ns>/<checkpoint_id>``: one checkpoint (serde-typed, base64) with its metadata and parent.
* ``b/<ns>/<channel>/<version>``: one channel value at one version (as ``InMemorySaver``'s blobs).
* ``w/<ns>/<checkpoint_id>/<task_id>``: the pending writes of one task.

``put`` writes the blobs and the checkpoint record, then moves the head: only if this saver
holds the thread's claim (epoch checked atomically with the commit) and the checkpoint's parent
(``config["configurable"]["checkpoint_id"]``) is still the namespace's head. Otherwise it deletes
what it wrote and raises a typed error, so a second runner or a woken zombie cannot fork the
chain (langgraph issue 8796).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import fencedstate as fs
from fencedstate.core import args
from fencedstate.errors import FencedStateError
from fencedstate.integrations import KeyedLocks, default_owner, resolve_store

from ._checkpoint_reads import CheckpointReads
from ._keys import encode_segment
from ._layout import ThreadLayout, b64
from ._thread_errors import CheckpointForkError, ThreadClaimedError

__all__ = ["CheckpointForkError", "FencedCheckpointSaver", "ThreadClaimedError"]


def _release_all(claims: dict[str, fs.Claim], lock: threading.RLock) -> None:
    """Release every claim in ``claims`` (a grant already lost is skipped)."""
    with lock:
        held = list(claims.values())
        claims.clear()
    for claim in held:
        with contextlib.suppress(FencedStateError):
            claim.release()


class FencedCheckpointSaver(CheckpointReads, BaseCheckpointSaver[str]):
    """A ``BaseCheckpointSaver`` over a fencedstate store with one claimed writer per thread.

    ``FencedCheckpointSaver(fs.open_store("state/"))`` is a drop-in for ``InMemorySaver()``.
    The first write to a thread claims it for ``ttl`` seconds (renewed as the run goes on);
    ``claim_wait`` seconds are spent waiting for another runner's claim before
    ``ThreadClaimedError``. Release with ``release(thread_id)``, ``close()`` or ``with``; a saver
    that is dropped, or a process that exits normally, releases its claims too.
    """

    def __init__(
        self,
        store: fs.Store,
        *,
        prefix: str = "lgcp",
        owner: str | None = None,
        ttl: float = 30.0,
        claim_wait: float = 0.0,
        serde: SerializerProtocol | None = None,
    ) -> None:
        store = resolve_store(store, what="FencedCheckpointSaver's store")
        args.ttl(ttl)  # InvalidArgumentError, a ValueError
        args.wait(claim_wait, "claim_wait")
        super().__init__(serde=serde)
        fs.validate_key(prefix)
        self._store = store
        self._layout = ThreadLayout(prefix)
        self.owner = args.optional_actor("owner", owner) or default_owner("langgraph")
        self.ttl = float(ttl)
        self.claim_wait = float(claim_wait)
        self._claims: dict[str, fs.Claim] = {}
        self._lock = threading.RLock()
        self._head_locks = KeyedLocks()  # this saver's own callers move a head one at a time
        # A saver dropped, or a process that ends normally, gives its threads back at once (a
        # second run, or a resume after an interrupt, need not wait out the lease); a killed
        # one leaves the lease to lapse, as fencing needs.
        weakref.finalize(self, _release_all, self._claims, self._lock)

    def head_key(self, thread_id: str) -> str:
        """The fencedstate key a runner claims for ``thread_id``."""
        return self._layout.head(thread_id)

    # ---- claims --------------------------------------------------------------------------------

    def _claim_for(self, thread_id: str) -> fs.Claim:
        """This saver's live claim on the thread, taking (or renewing) it as needed."""
        with self._lock:
            claim = self._claims.get(thread_id)
            if claim is not None:
                if claim.expires_in > self.ttl / 2:
                    return claim
                try:
                    claim.renew()
                    return claim
                except fs.FencedError as err:
                    if err.reason != "expired":
                        raise
                    # Lapsed with nobody else taking over: take a fresh grant below. The head
                    # compare-and-set still refuses to fork if someone moved the thread on.
                    del self._claims[thread_id]
            key = self.head_key(thread_id)
            try:
                claim = self._store.claim(key, owner=self.owner, ttl=self.ttl, wait=self.claim_wait)
            except fs.ClaimHeldError as err:
                raise ThreadClaimedError(
                    key, err.holder, err.expires_in, thread_id=str(thread_id)
                ) from err
            self._claims[thread_id] = claim
            return claim

    def release(self, thread_id: str) -> bool:
        """Give up this saver's claim on ``thread_id``; False if it held none."""
        with self._lock:
            claim = self._claims.pop(thread_id, None)
        if claim is None:
            return False
        with contextlib.suppress(FencedStateError):
            return bool(claim.release())
        return False

    def close(self) -> None:
        """Release every claim this saver holds (also done when it is dropped, or at exit)."""
        _release_all(self._claims, self._lock)

    def __enter__(self) -> FencedCheckpointSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> FencedCheckpointSaver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)

    # ---- reads ---------------------------------------------------------------------------------

    # ---- writes --------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store ``checkpoint`` and move the thread's head to it, fenced; never forks.

        Raises ``CheckpointForkError`` if the parent is not the namespace's latest checkpoint,
        ``ThreadClaimedError`` if another runner holds the thread, ``fencedstate.FencedError``
        if this runner's claim was reclaimed while it was stalled.
        """
        conf = config["configurable"]
        tid = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        parent = conf.get("checkpoint_id")
        cid = str(checkpoint["id"])
        claim = self._claim_for(tid)

        c: dict[str, Any] = dict(checkpoint)
        values: dict[str, Any] = dict(c.pop("channel_values", None) or {})
        record = {
            "thread_id": tid,
            "ns": ns,
            "id": cid,
            "parent": parent,
            "checkpoint": b64(self.serde.dumps_typed(c)),
            "metadata": b64(self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))),
        }
        batch: dict[str, tuple[Any, int | None]] = {}
        for channel, version in new_versions.items():
            if channel in values:
                blob = {"type": "value", "data": b64(self.serde.dumps_typed(values[channel]))}
            else:
                blob = {"type": "empty"}
            batch[self._layout.blob(tid, ns, channel, version)] = (blob, None)
        batch[self._layout.checkpoint(tid, ns, cid)] = (record, None)
        written = self._store.put_many(batch, writer=self.owner)
        try:
            with self._head_locks.of(tid):
                self._move_head(claim, tid, ns, parent, cid)
        except FencedStateError:
            self._undo(written)
            raise
        return {"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": cid}}

    def _move_head(self, claim: fs.Claim, tid: str, ns: str, parent: str | None, cid: str) -> None:
        """Compare-and-set the head (caller holds ``_head_locks.of(tid)``): read once, commit once.

        The claim keeps other runners out and the lock keeps this saver's threads in line, so
        a ``ConflictError`` here means someone bypassed the claim: it is raised, not retried.
        An expired (not reclaimed) claim is taken afresh once and the commit tried again.
        """
        for attempt in range(2):
            heads, snap = self._heads(tid)
            version = 0 if snap is None else snap.version
            head = heads.get(ns)
            head_id = None if head is None else head.get("id")
            if parent is not None and head_id is not None and head_id not in (parent, cid):
                raise CheckpointForkError(
                    claim.key,
                    version,
                    version,
                    thread_id=tid,
                    checkpoint_ns=ns,
                    parent_checkpoint_id=parent,
                    head_checkpoint_id=str(head_id),
                )
            heads[ns] = {"id": cid, "parent": parent}
            try:
                claim.commit({"thread_id": tid, "heads": heads}, expected_version=version)
                return
            except fs.FencedError as err:
                with self._lock:
                    if self._claims.get(tid) is claim:
                        del self._claims[tid]
                if err.reason != "expired" or attempt:
                    raise
                claim = self._claim_for(tid)

    def _undo(self, written: dict[str, fs.Snapshot]) -> None:
        for key, snap in written.items():
            with contextlib.suppress(FencedStateError):
                self._store.delete(key, expected_version=snap.version, writer=self.owner)

    def _check_fence(self, tid: str) -> None:
        claim = self._claim_for(tid)
        snap = self._store.get(self.head_key(tid))
        cur_epoch = 0 if snap is None else snap.epoch
        if snap is not None and cur_epoch != claim.epoch:
            with self._lock:
                if self._claims.get(tid) is claim:
                    del self._claims[tid]
            raise fs.FencedError(claim.key, claim.epoch, cur_epoch, "reclaimed")

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for the checkpoint in ``config`` (fenced by the claim)."""
        conf = config["configurable"]
        tid = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = str(conf["checkpoint_id"])
        self._check_fence(tid)
        key = self._layout.writes(tid, ns, cid) + encode_segment(str(task_id))
        new = [
            (WRITES_IDX_MAP.get(channel, idx), channel, b64(self.serde.dumps_typed(value)))
            for idx, (channel, value) in enumerate(writes)
        ]

        def merge(old: Any) -> dict[str, Any]:
            cur: dict[str, Any] = dict(old["writes"]) if isinstance(old, dict) else {}
            for idx, channel, typed in new:
                if idx >= 0 and str(idx) in cur:
                    continue
                cur[str(idx)] = [channel, typed]
            return {"task_id": str(task_id), "task_path": task_path, "writes": cur}

        self._store.update(key, merge, writer=self.owner)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of ``thread_id`` (head first, under the claim)."""
        tid = str(thread_id)
        with self._lock:
            claim = self._claims.pop(tid, None)
        head = self.head_key(tid)
        if self._store.get(head) is not None:
            if claim is not None:
                try:
                    claim.delete()
                finally:
                    with contextlib.suppress(FencedStateError):
                        claim.release()
            else:
                try:
                    self._store.delete(head, expected_version=None, writer=self.owner)
                except fs.ClaimHeldError as err:  # a runner is on it: as update_state says
                    raise ThreadClaimedError(
                        head, err.holder, err.expires_in, thread_id=tid
                    ) from err
        elif claim is not None:
            with contextlib.suppress(FencedStateError):
                claim.release()
        for key in self._store.keys(prefix=self._layout.thread(tid) + "/"):
            if key == head:
                continue
            with contextlib.suppress(fs.ConflictError):
                self._store.delete(key, expected_version=None, writer=self.owner)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic string versions, as ``InMemorySaver``'s."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # ---- async twins (the sync methods on a worker thread: the loop never blocks) -----------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async ``get_tuple``."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async ``list``."""
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async ``put``."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async ``put_writes``."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async ``delete_thread``."""
        await asyncio.to_thread(self.delete_thread, thread_id)

"""The read side of ``FencedCheckpointSaver``: heads, one checkpoint, the filtered history.

Nothing here writes or claims: reads never block a runner, and see only committed state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple, get_checkpoint_id
from langgraph.checkpoint.serde.base import SerializerProtocol

import fencedstate as fs

from ._keys import encode_segment
from ._layout import ThreadLayout, unb64

__all__ = ["CheckpointReads"]


class CheckpointReads:
    """``get_tuple`` and ``list`` over the saver's store, ``_layout`` and ``serde``."""

    _store: fs.Store
    _layout: ThreadLayout
    serde: SerializerProtocol

    def _heads(self, thread_id: str) -> tuple[dict[str, Any], fs.Snapshot | None]:
        snap = self._store.get(self._layout.head(thread_id))
        if snap is None or not isinstance(snap.value, dict):
            return {}, snap
        return dict(snap.value.get("heads", {})), snap

    def _load_record(self, tid: str, ns: str, cid: str) -> dict[str, Any] | None:
        snap = self._store.get(self._layout.checkpoint(tid, ns, cid))
        return snap.value if snap is not None and isinstance(snap.value, dict) else None

    def _tuple(self, rec: dict[str, Any]) -> CheckpointTuple:
        tid, ns, cid = rec["thread_id"], rec["ns"], rec["id"]
        checkpoint: Checkpoint = self.serde.loads_typed(unb64(rec["checkpoint"]))
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            blob = self._store.get(self._layout.blob(tid, ns, channel, version))
            if blob is None or blob.value.get("type") == "empty":
                continue
            values[channel] = self.serde.loads_typed(unb64(blob.value["data"]))
        writes: list[tuple[str, str, int, str, Any]] = []
        for wkey in self._store.keys(prefix=self._layout.writes(tid, ns, cid)):
            wsnap = self._store.get(wkey)
            if wsnap is None:
                continue
            w = wsnap.value
            for idx, (channel, typed) in w["writes"].items():
                writes.append((w["task_path"], w["task_id"], int(idx), channel, typed))
        writes.sort(key=lambda x: (x[0], x[1], x[2]))
        parent = rec.get("parent")
        return CheckpointTuple(
            config={"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed(unb64(rec["metadata"])),
            parent_config=(
                {"configurable": {"thread_id": tid, "checkpoint_ns": ns, "checkpoint_id": parent}}
                if parent
                else None
            ),
            pending_writes=[
                (task_id, channel, self.serde.loads_typed(unb64(typed)))
                for _path, task_id, _idx, channel, typed in writes
            ],
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread namespace's latest one."""
        conf = config["configurable"]
        tid = str(conf["thread_id"])
        ns = str(conf.get("checkpoint_ns", ""))
        cid = get_checkpoint_id(config)
        if not cid:
            heads, _ = self._heads(tid)
            head = heads.get(ns)
            if head is None:
                return None
            cid = str(head["id"])
        rec = self._load_record(tid, ns, cid)
        return None if rec is None else self._tuple(rec)

    def _thread_ids(self) -> list[str]:
        tids: set[str] = set()
        for key in self._store.keys(prefix=self._layout.prefix + "/"):
            if key.endswith("/head"):
                snap = self._store.get(key)
                if snap is not None and isinstance(snap.value, dict):
                    tids.add(str(snap.value.get("thread_id")))
        return sorted(tids)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first, filtered like ``InMemorySaver.list``."""
        if config is not None:
            tids = [str(config["configurable"]["thread_id"])]
            want_ns = config["configurable"].get("checkpoint_ns")
            want_id = get_checkpoint_id(config)
        else:
            tids, want_ns, want_id = self._thread_ids(), None, None
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        for tid in tids:
            prefix = f"{self._layout.thread(tid)}/cp/"
            if want_ns is not None:
                prefix += encode_segment(str(want_ns)) + "/"
            records: list[dict[str, Any]] = []
            for key in self._store.keys(prefix=prefix):
                snap = self._store.get(key)
                if snap is not None and isinstance(snap.value, dict):
                    records.append(snap.value)
            records.sort(key=lambda r: (r["ns"], r["id"]))
            by_ns: dict[str, list[dict[str, Any]]] = {}
            for r in records:
                by_ns.setdefault(r["ns"], []).append(r)
            for ns_records in by_ns.values():
                for rec in reversed(ns_records):
                    if want_id and rec["id"] != want_id:
                        continue
                    if before_id and rec["id"] >= before_id:
                        continue
                    if filter:
                        md = self.serde.loads_typed(unb64(rec["metadata"]))
                        if not all(md.get(k) == v for k, v in filter.items()):
                            continue
                    if remaining is not None:
                        if remaining <= 0:
                            return
                        remaining -= 1
                    yield self._tuple(rec)

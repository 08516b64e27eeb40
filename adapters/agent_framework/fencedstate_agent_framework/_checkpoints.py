"""``FencedCheckpointStorage``: workflow checkpoints in fencedstate keys, one writer per id.

Layout (``prefix`` defaults to ``"agent_framework/checkpoints/"``): ``{prefix}{id}`` holds
``{"format": 1, "workflow_name", "timestamp", "checkpoint": <encoded>}`` where ``<encoded>`` is
the framework's own checkpoint encoding (``encode_checkpoint_value``, as FileCheckpointStorage
writes it). Ids are escaped into one key segment (``encode_segment``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from agent_framework import WorkflowCheckpoint
from agent_framework._workflows._checkpoint_encoding import (
    decode_checkpoint_value,
    encode_checkpoint_value,
)
from agent_framework.exceptions import WorkflowCheckpointException

import fencedstate as fs
from fencedstate.core import args
from fencedstate.errors import ConflictError

from ._common import FORMAT, resolve_prefix, resolve_store, segment
from .errors import CheckpointConflictError, CheckpointNotFoundError, InvalidCheckpointError


class FencedCheckpointStorage:
    """A workflow ``CheckpointStorage`` on a fencedstate store, safe to share between processes.

    A checkpoint id is written once: ``save`` commits with ``expected_version=0``, so of two
    writers saving one id exactly one wins and the other gets ``CheckpointConflictError``
    (unless it saves identical content: then ``save`` is an idempotent retry and returns the
    id). Nothing ever shares a temporary file. Reads decode under the built-in safe types plus
    ``allowed_checkpoint_types``, as ``FileCheckpointStorage`` does.
    """

    def __init__(
        self,
        store: fs.Store | str,
        *,
        prefix: str = "agent_framework/checkpoints/",
        allowed_checkpoint_types: list[str] | None = None,
        writer: str | None = None,
    ) -> None:
        """Keep checkpoints in ``store`` (a Store, or a directory/URL for ``fs.open_store``).

        ``prefix`` ends in ``/``; ``allowed_checkpoint_types`` names extra types reads may decode
        (``"module:qualname"`` strs); ``writer`` names this storage in the key history. A bad
        option raises ``fs.InvalidArgumentError`` naming it, before the store is opened.
        """
        self.prefix = resolve_prefix(prefix)
        allowed = args.names("allowed_checkpoint_types", allowed_checkpoint_types)
        self._allowed_types: frozenset[str] = allowed or frozenset()
        self.writer = args.optional_actor("writer", writer)
        self.store = resolve_store(store)

    def checkpoint_key(self, checkpoint_id: str) -> str:
        """The store key holding one checkpoint."""
        return f"{self.prefix}{segment(checkpoint_id, 'checkpoint_id')}"

    def _decode(self, value: Any) -> WorkflowCheckpoint:
        decoded = decode_checkpoint_value(value["checkpoint"], allowed_types=self._allowed_types)
        return WorkflowCheckpoint.from_dict(decoded)

    def _save(self, checkpoint: WorkflowCheckpoint) -> str:
        if not isinstance(checkpoint, WorkflowCheckpoint):
            raise fs.InvalidArgumentError(
                f"checkpoint must be an agent_framework WorkflowCheckpoint, "
                f"got {type(checkpoint).__name__}: {checkpoint!r}"
            )
        cid = checkpoint.checkpoint_id
        key = self.checkpoint_key(cid)
        try:
            encoded = encode_checkpoint_value(checkpoint.to_dict())
            decode_checkpoint_value(encoded, allowed_types=self._allowed_types)
        except Exception as exc:  # the framework raises various types here; report one
            raise InvalidCheckpointError(cid, f"{type(exc).__name__}: {exc}") from exc
        value = {
            "format": FORMAT,
            "workflow_name": checkpoint.workflow_name,
            "timestamp": checkpoint.timestamp,
            "checkpoint": encoded,
        }
        try:
            self.store.put(key, value, expected_version=0, writer=self.writer)
        except ConflictError as exc:
            current = self.store.get(key)
            if current is not None and current.value == value:
                return cid  # the same checkpoint saved again (a retried save): already stored
            raise CheckpointConflictError(key, 0, exc.actual_version) from exc
        except fs.InvalidValueError as exc:
            raise InvalidCheckpointError(cid, str(exc)) from exc
        return cid

    def _load(self, checkpoint_id: str) -> WorkflowCheckpoint:
        snap = self.store.get(self.checkpoint_key(checkpoint_id))
        if snap is None:
            raise CheckpointNotFoundError(checkpoint_id)
        return self._decode(snap.value)

    def _list(self, workflow_name: str) -> list[WorkflowCheckpoint]:
        found: list[WorkflowCheckpoint] = []
        for key in self.store.keys(prefix=self.prefix):
            snap = self.store.get(key)
            if snap is None or snap.value.get("workflow_name") != workflow_name:
                continue
            try:
                found.append(self._decode(snap.value))
            except WorkflowCheckpointException:
                continue  # not decodable under this storage's allowed types (as the default)
        return found

    def _delete(self, checkpoint_id: str) -> bool:
        key = self.checkpoint_key(checkpoint_id)
        snap = self.store.get(key)
        if snap is None:
            return False
        try:
            self.store.delete(key, expected_version=snap.version, writer=self.writer)
        except ConflictError:
            return False  # deleted (and possibly re-saved) by someone else meanwhile
        return True

    async def save(self, checkpoint: WorkflowCheckpoint) -> str:
        """Store ``checkpoint`` under its id (write-once); returns the id.

        Not a ``WorkflowCheckpoint``: ``fs.InvalidArgumentError``, nothing written.
        """
        return await asyncio.to_thread(self._save, checkpoint)

    async def load(self, checkpoint_id: str) -> WorkflowCheckpoint:
        """The checkpoint stored under ``checkpoint_id`` (``CheckpointNotFoundError`` if none)."""
        return await asyncio.to_thread(self._load, checkpoint_id)

    async def list_checkpoints(self, *, workflow_name: str) -> list[WorkflowCheckpoint]:
        """Every stored checkpoint of ``workflow_name``."""
        return await asyncio.to_thread(self._list, workflow_name)

    async def delete(self, checkpoint_id: str) -> bool:
        """Delete one checkpoint; False if there was none."""
        return await asyncio.to_thread(self._delete, checkpoint_id)

    async def get_latest(self, *, workflow_name: str) -> WorkflowCheckpoint | None:
        """The checkpoint of ``workflow_name`` with the newest timestamp, or ``None``."""
        found = await self.list_checkpoints(workflow_name=workflow_name)
        if not found:
            return None
        return max(found, key=lambda cp: datetime.fromisoformat(cp.timestamp))

    async def list_checkpoint_ids(self, *, workflow_name: str) -> list[str]:
        """The ids of every stored checkpoint of ``workflow_name``."""
        return [cp.checkpoint_id for cp in await self.list_checkpoints(workflow_name=workflow_name)]

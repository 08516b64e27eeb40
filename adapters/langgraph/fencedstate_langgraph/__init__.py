"""fencedstate for LangGraph: a fenced ``BaseStore``, a fenced checkpointer, fenced tools.

``FencedStore(fs.open_store(dir))`` replaces ``InMemoryStore()``: a node that reads an item and
puts it back commits at the version it read, so a concurrent change raises
``fencedstate.ConflictError`` (retry the node with ``RetryPolicy(retry_on=ConflictError)``)
instead of being silently overwritten. ``FencedCheckpointSaver(fs.open_store(dir))`` replaces
``InMemorySaver()``: each runner claims the thread it writes, and a checkpoint ``put`` is a
compare-and-set on the thread's latest checkpoint, so two runners never fork a thread.
``fence_tool(fs.EffectLedger(store), tool)`` runs each tool call's side effect once per
``(thread_id, tool_call_id)``, so a run resumed from its checkpoint replays it.
"""

from __future__ import annotations

from ._keys import decode_segment, encode_segment
from .checkpoint import CheckpointForkError, FencedCheckpointSaver, ThreadClaimedError
from .effects import FencedTool, fence_tool, tool_effect_id
from .store import FencedItem, FencedSearchItem, FencedStore, ItemWriter

__all__ = [
    "CheckpointForkError",
    "FencedCheckpointSaver",
    "FencedItem",
    "FencedSearchItem",
    "FencedStore",
    "FencedTool",
    "ItemWriter",
    "ThreadClaimedError",
    "decode_segment",
    "encode_segment",
    "fence_tool",
    "tool_effect_id",
]

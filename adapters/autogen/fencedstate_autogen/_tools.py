"""AutoGen ``FunctionTool``s over ``fencedstate.tools.StateTools``: read and CAS-commit a key.

Every entry point takes ``store`` as ``FencedMemory`` does (a Store, or a path/URL for
``fencedstate.open_store``) and refuses a bad option when the tool is built, with
``fencedstate.InvalidArgumentError`` naming it, not at the model's first call.
"""

from __future__ import annotations

import os

from autogen_core.tools import FunctionTool

from fencedstate.integrations import (
    commit_state_function,
    key_prefix_of,
    read_state_function,
    resolve_store,
    writer_of,
)
from fencedstate.store import Store
from fencedstate.tools import COMMIT_DESCRIPTION, COMMIT_TOOL, READ_DESCRIPTION, READ_TOOL

__all__ = ["COMMIT_TOOL", "READ_TOOL", "commit_state_tool", "read_state_tool", "state_tools"]

StoreArg = Store | str | os.PathLike[str]


def read_state_tool(store: StoreArg, *, key_prefix: str = "") -> FunctionTool:
    """A tool ``read_state(key)``: JSON with the key's ``value``, ``version`` and ``writer``."""
    prefix = key_prefix_of(key_prefix)
    read_state = read_state_function(resolve_store(store), key_prefix=prefix)
    return FunctionTool(read_state, name=READ_TOOL, description=READ_DESCRIPTION)


def commit_state_tool(
    store: StoreArg, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> FunctionTool:
    """A tool ``commit_state(key, value_json, expected_version)``: a compare-and-set write.

    A rejected write comes back as a message for the model (``fencedstate.tools``), unless
    ``raise_on_conflict=True``: then the error is raised from the tool (inside an
    ``AssistantAgent``, AutoGen's workbench turns it into an ``is_error`` tool result naming
    ``ConflictError``; call ``run_json`` directly to get the exception).
    """
    name = writer_of(writer, raise_on_conflict)
    prefix = key_prefix_of(key_prefix)
    commit_state = commit_state_function(
        resolve_store(store), writer=name, raise_on_conflict=raise_on_conflict, key_prefix=prefix
    )
    return FunctionTool(commit_state, name=COMMIT_TOOL, description=COMMIT_DESCRIPTION)


def state_tools(
    store: StoreArg, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> list[FunctionTool]:
    """Both tools, ``[read_state, commit_state]``, ready for ``AssistantAgent(tools=...)``."""
    writer_of(writer, raise_on_conflict)  # refused before the store is opened
    key_prefix_of(key_prefix)
    resolved = resolve_store(store)  # opened once, shared by both tools
    return [
        read_state_tool(resolved, key_prefix=key_prefix),
        commit_state_tool(
            resolved, writer=writer, raise_on_conflict=raise_on_conflict, key_prefix=key_prefix
        ),
    ]

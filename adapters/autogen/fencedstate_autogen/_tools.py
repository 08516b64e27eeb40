"""AutoGen ``FunctionTool``s over ``fencedstate.tools.StateTools``: read and CAS-commit a key."""

from __future__ import annotations

from autogen_core.tools import FunctionTool

from fencedstate.integrations import commit_state_function, read_state_function
from fencedstate.store import Store
from fencedstate.tools import COMMIT_DESCRIPTION, COMMIT_TOOL, READ_DESCRIPTION, READ_TOOL

__all__ = ["COMMIT_TOOL", "READ_TOOL", "commit_state_tool", "read_state_tool", "state_tools"]


def read_state_tool(store: Store, *, key_prefix: str = "") -> FunctionTool:
    """A tool ``read_state(key)``: JSON with the key's ``value``, ``version`` and ``writer``."""
    read_state = read_state_function(store, key_prefix=key_prefix)
    return FunctionTool(read_state, name=READ_TOOL, description=READ_DESCRIPTION)


def commit_state_tool(
    store: Store, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> FunctionTool:
    """A tool ``commit_state(key, value_json, expected_version)``: a compare-and-set write.

    A rejected write comes back as a message for the model (``fencedstate.tools``), unless
    ``raise_on_conflict=True``: then the error is raised from the tool (inside an
    ``AssistantAgent``, AutoGen's workbench turns it into an ``is_error`` tool result naming
    ``ConflictError``; call ``run_json`` directly to get the exception).
    """
    commit_state = commit_state_function(
        store, writer=writer, raise_on_conflict=raise_on_conflict, key_prefix=key_prefix
    )
    return FunctionTool(commit_state, name=COMMIT_TOOL, description=COMMIT_DESCRIPTION)


def state_tools(
    store: Store, *, writer: str, raise_on_conflict: bool = False, key_prefix: str = ""
) -> list[FunctionTool]:
    """Both tools, ``[read_state, commit_state]``, ready for ``AssistantAgent(tools=...)``."""
    return [
        read_state_tool(store, key_prefix=key_prefix),
        commit_state_tool(
            store, writer=writer, raise_on_conflict=raise_on_conflict, key_prefix=key_prefix
        ),
    ]

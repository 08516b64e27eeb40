"""fencedstate for CrewAI: fenced flow persistence and compare-and-set tools for agents.

``FencedFlowPersistence(store)`` replaces ``SQLiteFlowPersistence``: loading a flow claims it
for the kickoff, saving commits with compare-and-set under that claim, so concurrent kickoffs
or parallel ``@listen`` methods never silently overwrite each other. ``FencedReadTool`` and
``FencedCommitTool`` give agents the same guarantee for shared keys.
"""

from fencedstate_crewai.persistence import FencedFlowPersistence, fenced_cause
from fencedstate_crewai.tools import (
    FencedCommitTool,
    FencedReadTool,
    conflict_message,
    summarize_value,
)

__all__ = [
    "FencedCommitTool",
    "FencedFlowPersistence",
    "FencedReadTool",
    "conflict_message",
    "fenced_cause",
    "summarize_value",
]

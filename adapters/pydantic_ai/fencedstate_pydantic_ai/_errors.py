"""The adapter's typed errors: fencedstate errors that are also the harness's ``ValueError``.

pydantic-ai-harness raises ``ValueError`` when a run id is reused (``StepPersistence`` and its
database stores), so these subclass both ``fs.FencedStateError`` and ``ValueError``.
"""

from __future__ import annotations

from typing import ClassVar

import fencedstate as fs


class RunClaimedError(fs.ClaimHeldError, ValueError):
    """Another live owner is writing this run (``holder``, ``expires_in``); nothing was written."""

    advice: ClassVar[str] = (
        "Another process owns this run: let it finish, or call reclaim_run(run_id) if it is "
        "dead or stalled; to continue its conversation start a new run with its history."
    )


class RunExistsError(fs.FencedStateError, ValueError):
    """``register_run`` for a run id already registered by another registration."""

    advice: ClassVar[str] = (
        "run_id is single-shot: use a new run_id (pass conversation_id= to Agent.run to group "
        "turns)."
    )

    run_id: str
    registration_id: str | None

    def __init__(self, run_id: str, registration_id: str | None) -> None:
        super().__init__(
            f"run {run_id!r} is already registered (registration {registration_id!r})",
            run_id=run_id,
            registration_id=registration_id,
        )


class ToolEffectConflictError(fs.FencedStateError, ValueError):
    """A tool effect's terminal status would be overwritten by the other terminal status."""

    advice: ClassVar[str] = (
        "Read the tool effect again (get_tool_effect): someone else already settled this call."
    )

    run_id: str
    tool_call_id: str
    current: str
    attempted: str

    def __init__(self, run_id: str, tool_call_id: str, current: str, attempted: str) -> None:
        super().__init__(
            f"tool call {tool_call_id!r} of run {run_id!r} is already {current!r}; "
            f"refusing to move it to {attempted!r}",
            run_id=run_id,
            tool_call_id=tool_call_id,
            current=current,
            attempted=attempted,
        )

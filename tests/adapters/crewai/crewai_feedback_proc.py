"""One step of a flow that pauses for async human feedback (a process of the feedback tests).

usage: python crewai_feedback_proc.py STORE_DIR pause
       python crewai_feedback_proc.py STORE_DIR resume FLOW_ID FEEDBACK

``pause`` kicks a review flow off until its provider raises ``HumanFeedbackPending`` and prints
``{"flow_id": ...}``. ``resume`` restores it with ``Flow.from_pending`` (``claim_timeout=0``: a
claim still held by the paused process would raise at once) and prints the outcome.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

from crewai.flow import human_feedback  # noqa: E402
from crewai.flow.async_feedback import HumanFeedbackPending, PendingFeedbackContext  # noqa: E402
from crewai.flow.flow import Flow, FlowState, listen, start  # noqa: E402
from crewai.flow.persistence import persist  # noqa: E402
from fencedstate_crewai import FencedFlowPersistence  # noqa: E402

import fencedstate as fs  # noqa: E402


class ReviewState(FlowState):
    drafts: int = 0
    published: str = ""


class SaveThenPause:
    """A provider that saves the pending context itself (as CrewAI's docs show), then pauses."""

    def __init__(self, persistence: FencedFlowPersistence) -> None:
        self.persistence = persistence

    def request_feedback(self, context: PendingFeedbackContext, flow: Flow[Any]) -> str:
        self.persistence.save_pending_feedback(context.flow_id, context, flow.state)
        raise HumanFeedbackPending(context=context)


def make_flow(persistence: FencedFlowPersistence) -> type[Flow[ReviewState]]:
    @persist(persistence)
    class ReviewFlow(Flow[ReviewState]):
        @start()
        @human_feedback(message="Publish this draft?", provider=SaveThenPause(persistence))
        def draft(self) -> str:
            self.state.drafts += 1
            return f"draft {self.state.drafts}"

        @listen(draft)
        def publish(self, result: Any) -> str:
            self.state.published = f"{result.output} / {result.feedback}"
            return self.state.published

    return ReviewFlow


def main() -> None:
    store_dir, action = sys.argv[1], sys.argv[2]
    persistence = FencedFlowPersistence(fs.open_store(store_dir), claim_timeout=0.0)
    flow_cls = make_flow(persistence)
    if action == "pause":
        flow = flow_cls(persistence=persistence, suppress_flow_events=True)
        result = flow.kickoff()
        assert isinstance(result, HumanFeedbackPending), result
        _out.write(json.dumps({"flow_id": result.context.flow_id}) + "\n")
        return
    flow_id, feedback = sys.argv[3], sys.argv[4]
    flow = flow_cls.from_pending(flow_id, persistence, suppress_flow_events=True)
    try:
        out = flow.resume(feedback)
    except Exception as exc:
        cause = exc
        while cause.__cause__ is not None or cause.__context__ is not None:
            if isinstance(cause, fs.FencedStateError):
                break
            cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
        _out.write(json.dumps({"error": type(cause).__name__, "message": str(cause)}) + "\n")
        return
    _out.write(json.dumps({"result": str(out), "state": flow.state.model_dump(mode="json")}) + "\n")


if __name__ == "__main__":
    main()

"""pydantic-ai-harness step persistence on a fencedstate store (compare-and-set, fenced runs)."""

from fencedstate_pydantic_ai._errors import RunClaimedError, RunExistsError, ToolEffectConflictError
from fencedstate_pydantic_ai._store import FencedStepStore

__all__ = ["FencedStepStore", "RunClaimedError", "RunExistsError", "ToolEffectConflictError"]

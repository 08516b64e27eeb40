"""pydantic-graph state persistence on a fencedstate store (fenced, compare-and-set)."""

from fencedstate_pydantic_graph._persistence import FencedStatePersistence, RunClaimedError

__all__ = ["FencedStatePersistence", "RunClaimedError"]

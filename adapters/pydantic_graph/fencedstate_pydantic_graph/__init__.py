"""pydantic-graph 1.x state persistence on a fencedstate store (fenced, compare-and-set)."""

try:
    import pydantic_graph.persistence  # noqa: F401  gone in pydantic-graph 2.x
except ModuleNotFoundError as _e:  # pragma: no cover - depends on the installed major
    raise ImportError(
        "fencedstate_pydantic_graph needs pydantic-graph 1.x (pip install "
        "'fencedstate[pydantic-graph]'): pydantic-graph 2.x removed pydantic_graph.persistence. "
        "With pydantic-ai 2.x use fencedstate_pydantic_ai.FencedStepStore "
        "(pip install 'fencedstate[pydantic-ai]')."
    ) from _e

from fencedstate_pydantic_graph._persistence import FencedStatePersistence, RunClaimedError

__all__ = ["FencedStatePersistence", "RunClaimedError"]

"""fencedstate adapter for langgraph (in progress)."""

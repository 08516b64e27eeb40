"""The pydantic-graph 1.x repro needs pydantic-graph 1.x, which pydantic-ai 2.x (the ``all`` set)
replaces with 2.x: it runs in the ``.[pydantic-graph,dev]`` environment with
tests/adapters/pydantic_graph (see tests/adapters/pydantic_graph/conftest.py)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    _GRAPH_MAJOR = int(version("pydantic-graph").split(".")[0])
except PackageNotFoundError:  # pragma: no cover - every environment that runs repros has it
    _GRAPH_MAJOR = 0
collect_ignore = ["test_graph_run_resumed_twice.py"] if _GRAPH_MAJOR != 1 else []

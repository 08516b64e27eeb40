"""These tests need pydantic-graph 1.x, which cannot share an environment with pydantic-ai 2.x.

pydantic-ai-slim 2.x requires pydantic-graph 2.x, and 2.x removed ``pydantic_graph.persistence``
(tests/adapters/pydantic_ai/test_pydantic_graph_bound.py shows both). So this directory runs in
its own environment with only ``.[pydantic-graph,dev]`` installed; in the ``all`` environment
(pydantic-graph 2.x) it is not collected.
"""

from __future__ import annotations

from importlib.metadata import version

collect_ignore_glob = [] if int(version("pydantic-graph").split(".")[0]) < 2 else ["*.py"]

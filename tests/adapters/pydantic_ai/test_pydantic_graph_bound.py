"""Why the ``pydantic-graph`` extra is bounded below 2 and lives apart from ``pydantic-ai``."""

from __future__ import annotations

import importlib
from importlib.metadata import requires, version

import pytest


def test_pydantic_graph_2_removed_the_persistence_api() -> None:
    assert int(version("pydantic-graph").split(".")[0]) == 2
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pydantic_graph.persistence")
    import pydantic_graph

    # the 1.x runner entry points the adapter is driven through are gone too
    assert not hasattr(pydantic_graph.Graph, "initialize")
    assert not hasattr(pydantic_graph.Graph, "iter_from_persistence")


def test_the_1x_adapter_says_what_to_install() -> None:
    with pytest.raises(ImportError, match=r"pydantic-graph 1\.x.*FencedStepStore"):
        importlib.import_module("fencedstate_pydantic_graph")


def test_pydantic_ai_2_pins_pydantic_graph_2() -> None:
    """pydantic-ai-slim pins its own pydantic-graph release: the two extras cannot co-install."""
    pins = [r for r in requires("pydantic-ai-slim") or [] if r.startswith("pydantic-graph")]
    assert pins == [f"pydantic-graph=={version('pydantic-ai-slim')}"]

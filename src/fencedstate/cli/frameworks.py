"""``fencedstate demo --frameworks``: run each framework's example (its default losing or
interleaving writes next to the fenced adapter), for the frameworks that are installed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

# (framework, module that must be importable, extra, example script)
EXAMPLES = [
    ("LangGraph", "fencedstate_langgraph", "langgraph", "langgraph_parallel_workers.py"),
    ("CrewAI", "fencedstate_crewai", "crewai", "crewai_flow.py"),
    ("AutoGen", "fencedstate_autogen", "autogen", "autogen_memory.py"),
    ("OpenAI Agents SDK", "fencedstate_openai_agents", "openai-agents", "openai_agents_session.py"),
    ("Google ADK", "fencedstate_adk", "adk", "adk_sessions.py"),
    (
        "Microsoft Agent Framework",
        "fencedstate_agent_framework",
        "agent-framework",
        "agent_framework_sessions.py",
    ),
    ("Pydantic AI 2.x", "pydantic_ai_harness", "pydantic-ai", "pydantic_ai_steps.py"),
    # its own environment: pydantic-ai 2.x installs pydantic-graph 2.x, which has no persistence
    (
        "pydantic-graph 1.x",
        "pydantic_graph.persistence",
        "pydantic-graph",
        "pydantic_graph_resume.py",
    ),
]


# extra -> the framework's own top-level module (the adapter packages ship with the core, so
# they are always importable; the framework is what may be missing)
FRAMEWORK_MODULES = {
    "langgraph": "langgraph",
    "crewai": "crewai",
    "autogen": "autogen_agentchat",
    "openai-agents": "agents",
    "adk": "google.adk",
    "agent-framework": "agent_framework",
    "pydantic-ai": "pydantic_graph",
}


def installed(module: str) -> bool:
    """True if ``module`` can be found (a missing parent package counts as not installed)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def examples_dir() -> Path | None:
    """The repository's ``examples/`` next to this source tree, if this is a checkout."""
    candidate = Path(__file__).resolve().parents[3] / "examples"
    return candidate if candidate.is_dir() else None


def run() -> int:
    """Run every installed framework's example and print the install line of the others; 0 if
    every example that ran succeeded."""
    where = examples_dir()
    if where is None:
        print(
            "fencedstate: error: the framework examples live in the source checkout's "
            "examples/ folder: run this from a clone of the repository (`make demo` there)",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for name, module, extra, script in EXAMPLES:
        path = where / script
        print(f"== {name} ({path.relative_to(where.parent)})", flush=True)
        if not path.exists():
            print("   no example in this checkout\n")
            continue
        framework = FRAMEWORK_MODULES.get(extra)
        if not installed(module) or (framework is not None and not installed(framework)):
            print(f"   not installed: pip install -e '.[{extra}]'\n")
            continue
        code = subprocess.call([sys.executable, str(path)], cwd=where.parent)
        failed += code != 0
        print()
    return 1 if failed else 0

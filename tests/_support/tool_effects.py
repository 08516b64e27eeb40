"""The bad options every tool-effects hook must refuse when built (``integrations.ToolEffects``,
which ADK's ``EffectCallbacks`` and agent-framework's ``EffectMiddleware`` are built on): each
with the argument its ``InvalidArgumentError`` must name."""

from __future__ import annotations

from typing import Any

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"ledger": "effects/"}, "ledger"),
    ({"tools": "send_email"}, "tools"),  # a bare str: fenced single letters, not the tool
    ({"tools": [5]}, "tools"),
    ({"tools": 5}, "tools"),
    ({"probe": "yes"}, "probe"),
    ({"ttl": "60"}, "ttl"),
    ({"ttl": 0}, "ttl"),
    ({"ttl": 1e9}, "ttl"),
    ({"ttl": float("nan")}, "ttl"),
]

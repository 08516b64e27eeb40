"""What every adapter's fenced tool call shares: its settings, its probe, its recorded result.

A framework hook (callbacks, middleware, a wrapped tool) keys each tool call by its run and
the model's call id and runs it through ``EffectLedger``; the framework-free parts live here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from ..core import args
from ..effects import EffectLedger, EffectToken
from ..errors import InvalidArgumentError

__all__ = ["Probe", "ToolEffects", "bind_probe", "recorded"]

Probe = Callable[[EffectToken, dict[str, Any]], Any]
"""``probe(token, args)``: the tool's result if the effect happened, else raise
``EffectNotApplied``."""


def recorded(output: Any) -> Any:
    """A tool's output as the ledger records it: as JSON reads it back, or else as text."""
    try:  # a tuple becomes a list
        return json.loads(json.dumps(output, allow_nan=False))
    except (TypeError, ValueError):
        return str(output)


def bind_probe(
    probe: Probe | None, args: dict[str, Any], then: Callable[[Any], Any] | None = None
) -> Callable[[EffectToken], Any] | None:
    """``probe`` as the ledger calls it, ``token -> probe(token, args)`` (then ``then``)."""
    if probe is None:
        return None
    if then is None:
        return lambda token: probe(token, args)
    return lambda token: then(probe(token, args))


class ToolEffects:
    """A hook's settings: the ledger, which tools it fences, the probe, the lease.

    ``tools``: names of the tools to fence (default: every tool). ``ttl``: how long a call may
    run before another run treats it as in doubt. A hook that surrounds the call (begin in one
    callback, finish in another) keeps the tokens of the calls it began in ``running``.
    A bad argument raises ``InvalidArgumentError`` naming it when the hook is built.
    """

    def __init__(
        self,
        ledger: EffectLedger,
        *,
        tools: Iterable[str] | None = None,
        probe: Probe | None = None,
        ttl: float = 60.0,
    ) -> None:
        if not isinstance(ledger, EffectLedger):
            raise InvalidArgumentError(
                f"ledger must be a fencedstate EffectLedger (fs.EffectLedger(store)), "
                f"not {type(ledger).__name__}"
            )
        if probe is not None:
            args.function("probe", probe, "(token, args)")
        self.ledger = ledger
        self.tools = args.names("tools", tools)  # e.g. {'send_email'}
        self.probe = probe
        self.ttl = args.ttl(ttl)
        self.running: dict[str, EffectToken] = {}

    def fences(self, tool_name: str) -> bool:
        """True if calls of ``tool_name`` are fenced."""
        return self.tools is None or tool_name in self.tools

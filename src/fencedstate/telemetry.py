"""Opt-in OpenTelemetry: counters of commits, conflicts, fences, claim grants and retries, a
histogram of commit latency, and a span around each commit with its key, version and outcome.

Off until ``enable()`` is called (or ``FENCEDSTATE_OTEL=1`` is set when fencedstate is imported),
and a no-op when ``opentelemetry-api`` is not installed (extra ``otel``). While off, the store's
only cost is a test of ``ACTIVE`` or two per commit. Metrics carry the operation, outcome,
backend and ``error.type`` (never the key, whose cardinality is unbounded); spans carry the key.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ClaimHeldError, ConflictError, FencedError

INSTRUMENTATION = "fencedstate"

_COUNTERS = {
    # Stats field -> (instrument name, unit, description); a count's unit is a curly-brace
    # annotation (OpenTelemetry semantic conventions), not the unity "1".
    "commits": ("fencedstate.commits", "{commit}", "accepted puts, claim commits and deletes"),
    "conflicts": ("fencedstate.conflicts", "{conflict}", "commits refused with ConflictError"),
    "fenced": ("fencedstate.fences", "{fence}", "commits refused with FencedError (a stale claim)"),
    "claims": ("fencedstate.claim.grants", "{grant}", "claims granted"),
    "retries": ("fencedstate.retries", "{retry}", "update() attempts retried after a conflict"),
}  # fmt: skip

DURATION_BUCKETS_S = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
"""Bucket bounds of ``fencedstate.commit.duration`` in seconds (an advisory the SDK applies
unless a view overrides it; its default bounds 0, 5, 10 ... 10000 are made for milliseconds)."""


class Telemetry:
    """The instruments of one tracer and meter (``enable`` makes the active one)."""

    def __init__(self, tracer: Any, meter: Any) -> None:
        self.tracer = tracer
        self.counters = {
            field: meter.create_counter(name, unit=unit, description=desc)
            for field, (name, unit, desc) in _COUNTERS.items()
        }
        self.latency = meter.create_histogram(
            "fencedstate.commit.duration",
            unit="s",
            description="commit latency, acknowledged",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )

    def count(self, field: str, n: int, backend: str) -> None:
        """Add ``n`` to the counter behind ``Stats`` field ``field``."""
        counter = self.counters.get(field)
        if counter is not None:
            counter.add(n, {"fencedstate.backend": backend})

    @contextmanager
    def commit(self, op: str, key: str, backend: str) -> Iterator[dict[str, Any]]:
        """A span and a latency sample around one commit; the caller sets ``version`` in the
        yielded dict. The outcome is ``ok``, ``conflict``, ``fenced``, ``held`` or ``error``."""
        attrs: dict[str, Any] = {
            "fencedstate.op": op,
            "fencedstate.key": key,
            "fencedstate.backend": backend,
        }
        result: dict[str, Any] = {}
        start = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"fencedstate.{op}", attributes=attrs, record_exception=False
        ) as span:
            outcome = "ok"
            error: str | None = None
            try:
                yield result
            except BaseException as exc:
                outcome = _outcome(exc)
                error = _error_type(exc)
                span.set_attribute("error.type", error)
                raise
            finally:
                span.set_attribute("fencedstate.outcome", outcome)
                if "version" in result:
                    span.set_attribute("fencedstate.version", result["version"])
                sample = {"fencedstate.op": op, "fencedstate.outcome": outcome,
                          "fencedstate.backend": backend}  # fmt: skip
                if error is not None:
                    sample["error.type"] = error
                self.latency.record(time.perf_counter() - start, sample)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, ConflictError):
        return "conflict"
    if isinstance(exc, FencedError):
        return "fenced"
    if isinstance(exc, ClaimHeldError):
        return "held"
    return "error"


def _error_type(exc: BaseException) -> str:
    """The exception's class as ``error.type`` wants it: qualified by its module, bare for a
    builtin (``fencedstate.errors.ConflictError``, ``OSError``)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


ACTIVE: Telemetry | None = None
"""The telemetry in use, None while off (the store tests this before anything else)."""


def enable(*, tracer_provider: Any = None, meter_provider: Any = None) -> bool:
    """Turn the instruments on (the global providers unless given); False, and nothing
    changes, when ``opentelemetry-api`` is not installed."""
    global ACTIVE
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return False
    version = _version()
    tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(INSTRUMENTATION, version)
    meter = (meter_provider or metrics.get_meter_provider()).get_meter(INSTRUMENTATION, version)
    ACTIVE = Telemetry(tracer, meter)
    return True


def _version() -> str | None:
    try:
        from importlib.metadata import version

        return version("fencedstate")
    except Exception:  # not installed as a distribution (a bare source tree)
        return None


def disable() -> None:
    """Turn the instruments off again."""
    global ACTIVE
    ACTIVE = None


def enabled() -> bool:
    """True while the instruments are on."""
    return ACTIVE is not None


if os.environ.get("FENCEDSTATE_OTEL") == "1":
    enable()

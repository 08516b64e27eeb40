"""Opt-in OpenTelemetry (issue 27): counters, the commit latency histogram and commit spans,
read back with the SDK's in-memory exporter and reader; off by default; a no-op without the
API installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import fencedstate as fs
from fencedstate import telemetry


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InMemorySpanExporter, Any]]:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)  # conftest turns the SDK off
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    assert telemetry.enable(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield spans, reader
    finally:
        telemetry.disable()
        meter_provider.shutdown()
        tracer_provider.shutdown()


def _metrics(reader: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "fencedstate"
            for metric in sm.metrics:
                out[metric.name] = metric.data.data_points
    return out


def _total(points: Any) -> int:
    return sum(p.value for p in points)


def test_counters_histogram_and_spans(
    otel: tuple[InMemorySpanExporter, Any], tmp_path: Path
) -> None:
    spans, reader = otel
    store = fs.open_store(tmp_path)
    store.put("k", 1, expected_version=0)
    with pytest.raises(fs.ConflictError):
        store.put("k", 2, expected_version=0)
    claim = store.claim("k", owner="w1", ttl=60)
    claim.commit(2, expected_version=1)
    store.reclaim("k")
    with pytest.raises(fs.FencedError):
        claim.commit(3)
    holder = store.claim("k", owner="w2")  # the reclaim left no holder: granted
    with pytest.raises(fs.ClaimHeldError):
        store.claim("k", owner="w3")
    holder.delete(expected_version=2)
    holder.release()
    store.close()
    metrics = _metrics(reader)
    assert _total(metrics["fencedstate.commits"]) == 3  # put, claim commit, delete
    assert _total(metrics["fencedstate.conflicts"]) == 1
    assert _total(metrics["fencedstate.fences"]) == 1
    assert _total(metrics["fencedstate.claim.grants"]) == 2
    [point] = [
        p
        for p in metrics["fencedstate.commit.duration"]
        if p.attributes["fencedstate.op"] == "put" and p.attributes["fencedstate.outcome"] == "ok"
    ]
    assert point.count == 1 and point.sum > 0
    # "fencedstate.backend" on every signal (a module move once made it "fencedstate.core.backend")
    for name in ("fencedstate.commits", "fencedstate.commit.duration"):
        assert {p.attributes.get("fencedstate.backend") for p in metrics[name]} == {"FileStore"}
    assert {s.attributes.get("fencedstate.backend") for s in spans.get_finished_spans()} == {
        "FileStore"
    }
    got = [
        (
            s.name,
            s.attributes["fencedstate.key"],
            s.attributes.get("fencedstate.version"),
            s.attributes["fencedstate.outcome"],
        )
        for s in spans.get_finished_spans()
    ]
    assert got == [
        ("fencedstate.put", "k", 1, "ok"),
        ("fencedstate.put", "k", None, "conflict"),
        ("fencedstate.commit", "k", 2, "ok"),
        ("fencedstate.commit", "k", None, "fenced"),
        ("fencedstate.delete", "k", 3, "ok"),
    ]


def test_retries_are_counted(otel: tuple[InMemorySpanExporter, Any], tmp_path: Path) -> None:
    _, reader = otel
    store = fs.open_store(tmp_path)
    store.put("n", 0, expected_version=0)
    other = fs.open_store(tmp_path)

    def bump(v: int) -> int:
        if v == 0:
            other.put("n", 10, expected_version=1)  # someone else commits in between
        return v + 1

    assert store.update("n", bump).value == 11
    metrics = _metrics(reader)
    assert _total(metrics["fencedstate.retries"]) == 1
    assert _total(metrics["fencedstate.conflicts"]) == 1
    ops = {p.attributes["fencedstate.op"] for p in metrics["fencedstate.commit.duration"]}
    assert ops == {"put", "update"}  # other's put; both of the update's attempts
    store.close()
    other.close()


def test_an_update_is_an_update_span_from_its_first_attempt(
    otel: tuple[InMemorySpanExporter, Any], tmp_path: Path
) -> None:
    """The optimistic attempt was recorded as a put."""
    spans, _ = otel
    with fs.open_store(tmp_path) as store:
        store.update("u", lambda v: (v or 0) + 1)
    assert [s.name for s in spans.get_finished_spans()] == ["fencedstate.update"]


def test_off_by_default(tmp_path: Path) -> None:
    assert not telemetry.enabled()
    store = fs.open_store(tmp_path)
    store.put("k", 1, expected_version=0)
    assert store.stats.commits == 1
    store.close()


HIDE_OTEL = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Hide())
import os, tempfile
os.environ["FENCEDSTATE_OTEL"] = "1"
import fencedstate as fs
from fencedstate import telemetry
assert telemetry.enable() is False and not telemetry.enabled()
store = fs.open_store(tempfile.mkdtemp())
store.put("k", 1, expected_version=0)
print("ok", store.stats.commits)
"""


def test_a_no_op_without_the_api() -> None:
    out = subprocess.run(
        [sys.executable, "-c", HIDE_OTEL], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "1"]


def test_units_and_buckets_follow_the_semantic_conventions(
    otel: tuple[InMemorySpanExporter, Any], tmp_path: Path
) -> None:
    """Counts carry a curly-brace annotation, not the unity "1"; the latency histogram (in
    seconds) has buckets from a fraction of a millisecond to seconds, not the SDK's default
    0/5/10/.../10000 (made for milliseconds: every commit would land in the first bucket)."""
    _, reader = otel
    store = fs.open_store(tmp_path)
    store.put("k", 1, expected_version=0)
    with pytest.raises(fs.ConflictError):
        store.put("k", 2, expected_version=0)
    store.claim("k", owner="w").release()
    store.close()
    units: dict[str, str] = {}
    bounds: set[tuple[float, ...]] = set()
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                units[metric.name] = metric.unit
                if metric.name == "fencedstate.commit.duration":
                    bounds |= {tuple(p.explicit_bounds) for p in metric.data.data_points}
    assert units == {
        "fencedstate.commits": "{commit}",
        "fencedstate.conflicts": "{conflict}",
        "fencedstate.claim.grants": "{grant}",
        "fencedstate.commit.duration": "s",
    }
    [got] = bounds
    assert got == telemetry.DURATION_BUCKETS_S
    assert got[0] <= 0.001 and got[-1] >= 5 and list(got) == sorted(got)


def test_failures_carry_error_type_on_span_and_histogram(
    otel: tuple[InMemorySpanExporter, Any], tmp_path: Path
) -> None:
    """``error.type`` (semantic conventions, recording errors) on a failed commit's span and
    its latency sample, the same value on both, and absent when the commit succeeds."""
    spans, reader = otel
    store = fs.open_store(tmp_path)
    store.put("k", 1, expected_version=0)
    with pytest.raises(fs.ConflictError):
        store.put("k", 2, expected_version=0)
    store.claim("k", owner="w1", ttl=60)
    with pytest.raises(fs.ClaimHeldError):
        store.put("k", 3, expected_version=1)
    store.close()
    got = [
        (s.attributes["fencedstate.outcome"], s.attributes.get("error.type"))
        for s in spans.get_finished_spans()
    ]
    assert got == [
        ("ok", None),
        ("conflict", "fencedstate.errors.ConflictError"),
        ("held", "fencedstate.errors.ClaimHeldError"),
    ]
    points = {
        p.attributes["fencedstate.outcome"]: p.attributes.get("error.type")
        for p in _metrics(reader)["fencedstate.commit.duration"]
    }
    assert points == dict(got)

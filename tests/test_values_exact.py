"""Values JSON cannot read back exactly are refused, naming the place inside the value (issue 27),
on every backend."""

from __future__ import annotations

import pytest

import fencedstate as fs


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({1: "a"}, "$: dict key 1 is not a string"),
        ((1, 2), "$: a tuple"),
        ({"items": [1, 2, 3, (4, 5)]}, "$.items[3]: a tuple"),
        ({"a b": {"c": [{"x": 1}, {2: "y"}]}}, '$["a b"].c[1]: dict key 2 is not a string'),
        ({"ok": 1, "n": {True: 1}}, "$.n: dict key True is not a string"),
        ([{"k": None}, {None: 1}], "$[1]: dict key None is not a string"),
    ],
)
def test_inexact_values_are_refused_with_their_path(
    store: fs.Store, value: object, where: str
) -> None:
    store.put("k", "safe", expected_version=0)
    with pytest.raises(fs.InvalidValueError) as err:
        store.put("k", value, expected_version=1)
    assert where in str(err.value) and err.value.key == "k"
    with pytest.raises(fs.InvalidValueError):
        store.put_many({"k": (value, 1)})
    with pytest.raises(fs.InvalidValueError):
        store.update("k", lambda _: value)
    snap = store.get("k")
    assert snap is not None and (snap.value, snap.version) == ("safe", 1)


def test_colliding_keys_are_refused(store: fs.Store) -> None:
    with pytest.raises(fs.InvalidValueError, match="not a string"):
        store.put("k", {"1": "a", 1: "b"}, expected_version=0)
    assert store.get("k") is None


def test_exact_values_still_pass(store: fs.Store) -> None:
    value = {"a": [1, 1.0, -0.0, 10**30, True, None, "s"], "b": {"c": {"d": []}}}
    assert store.put("k", value, expected_version=0).value == value


def _cycle() -> list[object]:
    loop: list[object] = []
    loop.append({"next": loop})
    return loop


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": [1, float("nan")]}, "$.a[1]: nan is not a JSON number"),
        ({"limit": float("inf")}, "$.limit: inf is not a JSON number"),
        ({"tags": {"x"}}, "$.tags: a set"),
        ({"blob": [b"\x00"]}, "$.blob[0]: bytes"),
        ({"items": [0, "\ud800"]}, "$.items[1]: '\\ud800' holds a lone surrogate"),
        ({"n": 10**5000}, "$.n: an int too long"),
        ({"at": {(1, 2): "x"}}, "$.at: dict key (1, 2) is not a string"),
        ({"o": object()}, "$.o: 'object' is not JSON"),
        (_cycle(), "$[0].next: a cycle"),
        ({True: 1}, 'JSON reads it back as "true"'),
    ],
)
def test_values_json_cannot_encode_are_refused_with_their_path(
    store: fs.Store, value: object, where: str
) -> None:
    with pytest.raises(fs.InvalidValueError) as err:
        store.put("k", value, expected_version=0)
    assert where in str(err.value), str(err.value)
    assert err.value.advice and store.get("k") is None


def test_a_value_shared_twice_is_no_cycle(store: fs.Store) -> None:
    shared = {"x": [1]}
    assert store.put("k", [shared, shared], expected_version=0).value == [shared, shared]

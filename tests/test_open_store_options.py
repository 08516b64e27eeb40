"""``open_store`` shows its options (help(), IDEs) and names the valid ones when one is wrong
(issue 27)."""

from __future__ import annotations

import importlib
import inspect
import pydoc
from pathlib import Path

import pytest

import fencedstate as fs
from fencedstate import locations


def _backend_classes() -> list[type[fs.Store]]:
    classes: list[type[fs.Store]] = [fs.FileStore]
    for module, cls, _ in locations._BACKENDS.values():
        classes.append(getattr(importlib.import_module(module, "fencedstate"), cls))
    return classes


def test_every_backend_option_is_an_explicit_parameter() -> None:
    params = inspect.signature(fs.open_store).parameters
    explicit = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    every = {o for cls in _backend_classes() for o in locations.options_of(cls)}
    assert every <= explicit, f"open_store does not show {sorted(every - explicit)}"
    text = pydoc.render_doc(fs.open_store)
    for name in explicit:  # each one listed by help() and said what it is for
        assert f"{name}:" in text and f"``{name}``" in text, name


def test_options_reach_the_backend(tmp_path: Path) -> None:
    store = fs.open_store(tmp_path, durability="none", lock_timeout=2.5, history_limit=3)
    assert isinstance(store, fs.FileStore) and store.durability == "none"
    assert store._history_limit == 3 and store._locks._timeout == 2.5
    for i in range(6):
        store.put("k", i, expected_version=i)
    store.close()


def test_a_typo_names_the_nearest_and_the_valid_options(tmp_path: Path) -> None:
    with pytest.raises(fs.InvalidArgumentError) as info:
        fs.open_store(tmp_path / "s", lock_timout=3)
    message = str(info.value)
    assert "did you mean 'lock_timeout'?" in message
    assert "valid options: clock, compact_bytes, durability" in message
    assert not (tmp_path / "s").exists()  # nothing created
    with pytest.raises(fs.InvalidArgumentError, match="unknown option 'serializable' for the file"):
        fs.open_store(tmp_path / "s", serializable=True)
    with pytest.raises(fs.InvalidArgumentError, match="'durability' for the etcd:// backend"):
        fs.open_store("etcd://127.0.0.1:1/x", durability="none")
    with pytest.raises(fs.InvalidArgumentError, match="did you mean 'max_connections'"):
        fs.open_store("postgresql://u@127.0.0.1:1/db", max_conections=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("lock_timeout", "10"),  # e.g. read from an environment variable, never converted
        ("lock_timeout", -1),
        ("lock_timeout", float("nan")),
        ("max_value_bytes", "8M"),
        ("max_value_bytes", 0),
        ("history_limit", 2.5),
        ("compact_bytes", "8M"),
        ("compact_bytes", 100),
        ("trust_owner", "yes"),
    ],
)
def test_a_file_store_option_of_the_wrong_type_or_range_is_refused(
    tmp_path: Path, option: str, value: object
) -> None:
    with pytest.raises(fs.InvalidArgumentError, match=option) as info:
        fs.open_store(tmp_path / "s", **{option: value})  # type: ignore[arg-type]
    assert info.value.advice
    assert not (tmp_path / "s").exists()  # refused before anything was created

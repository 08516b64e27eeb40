"""The command line's tables: numbers right-aligned, text left-aligned, blanks neither."""

from __future__ import annotations

from fencedstate.cli.table import render


def test_a_column_of_blanks_stays_text_and_blanks_keep_numbers_right_aligned() -> None:
    out = render(
        ["key", "version", "holder"],
        [["plans/alpha", "12", "-"], ["b", "-", "-"], ["c", "3", "-"]],
        indent="",
    ).splitlines()
    assert out == [
        "key          version  holder",
        "-----------  -------  ------",
        "plans/alpha       12  -",
        "b                  -  -",
        "c                  3  -",
    ]


def test_a_column_with_any_word_is_left_aligned() -> None:
    out = render(["version"], [["3"], ["deleted"]], indent="").splitlines()
    assert out[2:] == ["3", "deleted"]

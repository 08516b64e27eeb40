"""Typed errors of the catalog."""

from __future__ import annotations

from typing import ClassVar

from ..errors import FencedStateError


class CatalogError(FencedStateError):
    """Base class of every catalog error (a ``FencedStateError``, like every library error)."""


class CatalogFormatError(CatalogError, ValueError):
    """An entry file is malformed (front matter, sections or field values)."""


class EntryNotFoundError(CatalogError, KeyError):
    """No entry has the requested id."""

    advice: ClassVar[str] = (
        "Use an id from the message's suggestions, or search the catalog by symptom "
        "(the `search` tool, `fencedstate catalog search TEXT`) and use an id it returns."
    )

    #: An id longer than this is shown cut (a pasted paragraph is not echoed back in full).
    SHOWN = 100

    def __init__(self, entry_id: str, suggestions: list[str]) -> None:
        self.suggestions = suggestions
        hint = f" (did you mean: {', '.join(suggestions)})" if suggestions else ""
        shown = entry_id
        if len(entry_id) > self.SHOWN:
            shown = entry_id[: self.SHOWN]
            hint = f" (cut from {len(entry_id)} chars){hint}"
        super().__init__(f"no catalog entry {shown!r}{hint}", entry_id=shown)

    def __str__(self) -> str:
        return str(self.args[0])


class CatalogNotFoundError(CatalogError, FileNotFoundError):
    """Neither the repository's `catalog/` nor the packaged index could be found."""

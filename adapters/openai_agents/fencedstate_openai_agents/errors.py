"""Typed errors of the OpenAI Agents SDK adapter (``fencedstate.FencedStateError`` subclasses)."""

from __future__ import annotations

from fencedstate.errors import InvalidValueError


class InvalidItemError(InvalidValueError, TypeError):
    """An item passed to ``add_items`` cannot be stored as JSON; nothing was written.

    Also a ``TypeError``, which ``SQLiteSession`` raises for the same items (from
    ``json.dumps``), so code written against the SDK's default session catches it.
    """

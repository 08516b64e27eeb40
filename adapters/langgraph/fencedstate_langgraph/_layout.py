"""Where ``FencedCheckpointSaver`` keeps a thread: its keys, and serde bytes as base64 text.

Under ``<prefix>/<thread>/`` (every part escaped by ``encode_segment``): ``head``, ``cp/<ns>/<id>``,
``b/<ns>/<channel>/<version>`` and ``w/<ns>/<id>/<task_id>`` (see ``checkpoint``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ._keys import encode_segment

__all__ = ["ThreadLayout", "b64", "unb64"]


def b64(typed: tuple[str, bytes]) -> list[str]:
    """A serde ``(type, bytes)`` pair as ``[type, base64 text]``."""
    return [typed[0], base64.b64encode(typed[1]).decode("ascii")]


def unb64(pair: Sequence[str]) -> tuple[str, bytes]:
    """``b64`` undone."""
    return (str(pair[0]), base64.b64decode(pair[1]))


class ThreadLayout:
    """The fencedstate keys of the threads under one prefix."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def thread(self, thread_id: str) -> str:
        """The folder of one thread."""
        return f"{self.prefix}/{encode_segment(str(thread_id))}"

    def head(self, thread_id: str) -> str:
        """The thread's head key (the key a runner claims)."""
        return f"{self.thread(thread_id)}/head"

    def checkpoint(self, tid: str, ns: str, cid: str) -> str:
        """One checkpoint record."""
        return f"{self.thread(tid)}/cp/{encode_segment(ns)}/{encode_segment(cid)}"

    def blob(self, tid: str, ns: str, channel: str, version: Any) -> str:
        """One channel value at one version."""
        return (
            f"{self.thread(tid)}/b/{encode_segment(ns)}/{encode_segment(channel)}/"
            f"{encode_segment(str(version))}"
        )

    def writes(self, tid: str, ns: str, cid: str) -> str:
        """The prefix of a checkpoint's pending writes (one key per task)."""
        return f"{self.thread(tid)}/w/{encode_segment(ns)}/{encode_segment(cid)}/"

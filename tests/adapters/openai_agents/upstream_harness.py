"""Run the OpenAI Agents SDK's own session tests against ``FencedSession``.

Not collected by pytest (it needs the SDK's test tree: its sdist carries ``tests/``, which CI
does not have). Run from the root of an unpacked ``openai_agents-X.Y.Z`` sdist, with the SDK
release X.Y.Z installed, for example::

    cd openai_agents-0.24.0
    python $REPO/tests/adapters/openai_agents/upstream_harness.py tests/memory/test_session.py

In each collected module, ``SQLiteSession(session_id, db_path=..., session_settings=...)``
(the SDK's default session) builds a ``FencedSession`` with default options on a file store:
one store per ``db_path`` file (so sessions the test puts in one database share a store),
a fresh one for each in-memory database. Test bodies are unchanged. Exit code is pytest's.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fencedstate_openai_agents import FencedSession

import fencedstate as fs


class _SwapSession:
    """A pytest plugin: point each collected module's ``SQLiteSession`` at ``FencedSession``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made = 0
        self.stores: dict[str, fs.Store] = {}

    def _store_for(self, db_path: Any) -> fs.Store:
        self.made += 1
        where = os.fspath(db_path)
        if where == ":memory:":
            return fs.open_store(str(self.root / f"memory-{self.made}"))
        if where not in self.stores:
            self.stores[where] = fs.open_store(str(self.root / f"db-{len(self.stores)}"))
        return self.stores[where]

    def _factory(self) -> type[FencedSession]:
        harness = self

        class SwappedSession(FencedSession):
            def __init__(
                self,
                session_id: str,
                db_path: Any = ":memory:",
                *args: Any,
                session_settings: Any = None,
                **kwargs: Any,
            ) -> None:
                super().__init__(
                    session_id,
                    store=harness._store_for(db_path),
                    session_settings=session_settings,
                )

        return SwappedSession

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        swapped = self._factory()
        for item in items:
            module = getattr(item, "module", None)
            if module is not None and not getattr(module, "_fencedstate_swapped", False):
                if hasattr(module, "SQLiteSession"):
                    module.SQLiteSession = swapped
                module._fencedstate_swapped = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"fencedstate FencedSession objects built: {self.made}")


def main(argv: list[str]) -> int:
    """Run pytest on ``argv`` (upstream test files first) with the session class swapped."""
    if not argv or not Path(argv[0]).exists():
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        plugin = _SwapSession(Path(tmp))
        args = [*argv, "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"]
        return int(pytest.main(args, plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

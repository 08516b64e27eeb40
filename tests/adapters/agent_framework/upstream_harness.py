"""Run Microsoft Agent Framework's own storage tests against this adapter.

Not collected by pytest (it needs a checkout of microsoft/agent-framework, which CI does not
have). Usage, with ``CORE=AGENT_FRAMEWORK/python/packages/core/tests``::

    python tests/adapters/agent_framework/upstream_harness.py \\
        $CORE/workflow/test_checkpoint.py -k "memory or chaining or ancestry or entry or superstep"
    python tests/adapters/agent_framework/upstream_harness.py \\
        $CORE/core/test_sessions.py -k TestSessionStore
    python tests/adapters/agent_framework/upstream_harness.py $CORE/core/test_sessions.py \\
        -k "TestInMemoryHistoryProvider or TestFileHistoryProvider"

In each collected module, ``InMemoryCheckpointStorage()`` (the in-memory reference checkpoint
storage) builds a ``FencedCheckpointStorage`` and ``SessionStore()`` (the in-memory reference
session store) a ``FencedSessionStore``, each on a fresh file store; the reference history
providers ``InMemoryHistoryProvider(...)`` and ``FileHistoryProvider(path, ...)`` build a
``FencedHistoryProvider`` with the same flags (a fresh store each; one store per ``path``).
Select with ``-k`` the tests written against those reference classes. The module's own
classes are allowed for checkpoint decoding, as ``InMemoryCheckpointStorage`` (which never
encodes) accepts them. Exit code is pytest's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fencedstate_agent_framework import (
    FencedCheckpointStorage,
    FencedHistoryProvider,
    FencedSessionStore,
)

import fencedstate as fs


class _SwapStorage:
    """A pytest plugin: point each collected module's ``InMemoryCheckpointStorage`` at ours."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made = 0

    def _store(self) -> fs.Store:
        self.made += 1
        return fs.open_store(str(self.root / f"store-{self.made}"))

    def _session_store(self) -> type[FencedSessionStore]:
        harness = self

        class SwappedSessionStore(FencedSessionStore):
            def __init__(self) -> None:
                super().__init__(harness._store())

        return SwappedSessionStore

    def _history_providers(self) -> tuple[type[FencedHistoryProvider], type[FencedHistoryProvider]]:
        harness = self
        flags = (
            "load_messages",
            "store_inputs",
            "store_context_messages",
            "store_context_from",
            "store_outputs",
            "skip_excluded",
        )
        by_path: dict[str, fs.Store] = {}

        class SwappedInMemoryHistory(FencedHistoryProvider):
            def __init__(self, source_id: str | None = None, **kwargs: Any) -> None:
                super().__init__(
                    harness._store(),
                    source_id=source_id or "in_memory",
                    **{k: v for k, v in kwargs.items() if k in flags},
                )

        class SwappedFileHistory(FencedHistoryProvider):
            def __init__(
                self, storage_path: Any, source_id: str | None = None, **kwargs: Any
            ) -> None:
                where = str(storage_path)
                if where not in by_path:
                    by_path[where] = harness._store()
                super().__init__(
                    by_path[where],
                    source_id=source_id or "file_history",
                    **{k: v for k, v in kwargs.items() if k in flags},
                )

        return SwappedInMemoryHistory, SwappedFileHistory

    def _factory(self, module: Any) -> Any:
        allowed = [
            f"{module.__name__}:{name}"
            for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__
        ]

        def make(*args: Any, **kwargs: Any) -> FencedCheckpointStorage:
            return FencedCheckpointStorage(self._store(), allowed_checkpoint_types=allowed)

        return make

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            module = getattr(item, "module", None)
            if module is not None and not getattr(module, "_fencedstate_swapped", False):
                if hasattr(module, "InMemoryCheckpointStorage"):
                    module.InMemoryCheckpointStorage = self._factory(module)
                if hasattr(module, "SessionStore"):
                    module.SessionStore = self._session_store()
                in_memory, file_history = self._history_providers()
                if hasattr(module, "InMemoryHistoryProvider"):
                    module.InMemoryHistoryProvider = in_memory
                if hasattr(module, "FileHistoryProvider"):
                    module.FileHistoryProvider = file_history
                module._fencedstate_swapped = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(
            f"fencedstate stores built for the swapped classes: {self.made}"
        )


def main(argv: list[str]) -> int:
    """Run pytest on ``argv`` (the upstream test file first) with the storage swapped."""
    if not argv or not Path(argv[0]).is_file():
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        plugin = _SwapStorage(Path(tmp))
        args = [*argv, "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "--rootdir", tmp]
        return int(pytest.main(args, plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Run AutoGen's own memory tests against ``FencedMemory``.

Not collected by pytest (it needs AutoGen's test file, ``tests/test_memory.py`` of the
``autogen-core`` sdist, which CI does not have). Run from the root of an unpacked
``autogen_core-X.Y.Z`` sdist with that release installed::

    python $REPO/tests/adapters/autogen/upstream_harness.py tests/test_memory.py

In the collected module, ``ListMemory(name=..., memory_contents=...)`` (AutoGen's default
memory) builds a ``FencedMemory`` on a fresh file store holding ``memory_contents``. Test bodies
are unchanged. Exit code is pytest's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from autogen_core.memory import MemoryContent
from fencedstate_autogen import FencedMemory, encode_content

import fencedstate as fs

KEY = "memory/list"


class _SwapMemory:
    """A pytest plugin: point each collected module's ``ListMemory`` at ``FencedMemory``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made = 0

    def _factory(self) -> type[FencedMemory]:
        harness = self

        class SwappedMemory(FencedMemory):
            def __init__(
                self, name: str | None = None, memory_contents: list[MemoryContent] | None = None
            ) -> None:
                harness.made += 1
                store = fs.open_store(str(harness.root / f"store-{harness.made}"))
                if memory_contents:
                    items = [encode_content(c) for c in memory_contents]
                    store.put(KEY, {"format": 1, "items": items}, expected_version=0)
                super().__init__(store, KEY, name=name)

        return SwappedMemory

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        swapped = self._factory()
        for item in items:
            module = getattr(item, "module", None)
            if module is not None and hasattr(module, "ListMemory"):
                module.ListMemory = swapped

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"fencedstate FencedMemory objects built: {self.made}")


def main(argv: list[str]) -> int:
    """Run pytest on ``argv`` (the upstream test file first) with the memory class swapped."""
    if not argv or not Path(argv[0]).is_file():
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        plugin = _SwapMemory(Path(tmp))
        args = [*argv, "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"]
        return int(pytest.main(args, plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

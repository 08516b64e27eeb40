"""Run Google ADK's own session-service tests against ``FencedSessionService``.

Not collected by pytest (it needs ADK's test file, tests/unittests/sessions/test_session_service.py
of google/adk-python, which is not in the release's package and not in CI). Usage::

    python tests/adapters/adk/upstream_harness.py PATH/test_session_service.py \\
        -k "not DATABASE and not SQLITE and not LIGHT_COPY"

In the collected module, ``get_session_service(...)`` (the helper every service test and the
``session_service`` fixture build their service with) returns a ``FencedSessionService`` on a
fresh file store, whatever service type it is asked for, and so does
``DatabaseSessionService(url)`` built directly by a test; the ``-k`` above runs each
fixture-parametrised test once. Select the tests that drive a service through its public API
(the ones on the internals of ``DatabaseSessionService`` cannot apply). Test bodies are
unchanged. Exit code is pytest's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fencedstate_adk import FencedSessionService


class _SwapService:
    """A pytest plugin: point each collected module's ``get_session_service`` at ours."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made = 0

    def _get_session_service(self, *args: Any, **kwargs: Any) -> FencedSessionService:
        self.made += 1
        return FencedSessionService(str(self.root / f"store-{self.made}"))

    def _database_service(self) -> type[FencedSessionService]:
        harness = self

        class SwappedDatabaseService(FencedSessionService):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                harness.made += 1
                super().__init__(str(harness.root / f"store-{harness.made}"))

        return SwappedDatabaseService

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        database = self._database_service()
        for item in items:
            module = getattr(item, "module", None)
            if module is not None and hasattr(module, "get_session_service"):
                module.get_session_service = self._get_session_service
                module.DatabaseSessionService = database

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_line(f"fencedstate FencedSessionService objects built: {self.made}")


def main(argv: list[str]) -> int:
    """Run pytest on ``argv`` (the upstream test file first) with the service swapped."""
    if not argv or not Path(argv[0]).is_file():
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        plugin = _SwapService(Path(tmp))
        args = [*argv, "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"]
        return int(pytest.main(args, plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

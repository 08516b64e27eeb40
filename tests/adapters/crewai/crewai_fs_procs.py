"""``Worker``: a long-lived ``crewai_fs_worker.py`` process driven over stdin/stdout (tests)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from crewai_fs_flows import CREWAI_ENV

HERE = Path(__file__).resolve().parent
READY_TIMEOUT = 240.0  # CrewAI imports take seconds; a loaded 2-core CI box is slower
REPLY_TIMEOUT = 180.0


class Worker:
    """One ``crewai_fs_worker.py`` process: send a JSON command, read one JSON reply."""

    def __init__(self, name: str, home: Path, log_dir: Path) -> None:
        env = {
            **os.environ,
            **CREWAI_ENV,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "CREWAI_STORAGE_DIR": str(home / "crewai-storage"),
            "PYTHONUNBUFFERED": "1",
        }
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "crewai_fs_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.pid = self.proc.pid
        self._replies: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._ready = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def recv(self, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"worker {self.name} gave no reply; log:\n{self.log()}") from None
        if line is None:
            raise AssertionError(f"worker {self.name} exited; log:\n{self.log()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def wait_ready(self) -> None:
        if not self._ready:
            assert self.recv(READY_TIMEOUT).get("ready")
            self._ready = True

    def send(self, cmd: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.send(cmd)
        return self.recv()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                os.kill(self.pid, signal.SIGCONT)
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=20)
        finally:
            self._log.close()

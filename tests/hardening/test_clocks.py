"""Leases against wall-clock jumps (real processes under libfaketime) and a reboot.

``faketime`` fakes the wall clock only here: ``FAKETIME_DONT_FAKE_MONOTONIC=1`` leaves
CLOCK_MONOTONIC/CLOCK_BOOTTIME real, as an NTP or ``date`` step would. A lease lives on the
host-wide boot clock, so a wall-clock step either way must neither expire nor extend it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hardening_support import PY, child_env, require_tool, run

import fencedstate as fs

_CHILD = r"""
import json, sys, time
import fencedstate as fs
store = fs.open_store(sys.argv[1])
action, key = sys.argv[2], sys.argv[3]
out = {"wall": time.time()}
if action == "put":
    try:
        store.put(key, "intruder", expected_version=None, writer="skewed")
        out["result"] = "committed"
    except fs.ClaimHeldError as exc:
        out["result"] = "ClaimHeldError"
        out["expires_in"] = exc.expires_in
elif action == "claim":
    try:
        c = store.claim(key, "skewed", ttl=float(sys.argv[4]))
        c.commit({"by": "skewed"}, expected_version=None)
        out["result"] = "claimed"
        out["epoch"] = c.epoch
    except fs.ClaimHeldError:
        out["result"] = "ClaimHeldError"
print(json.dumps(out))
"""


def skewed(root: str, offset: str, *args: str) -> dict[str, object]:
    env = child_env()
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    proc = run(
        [require_tool("faketime"), "-f", offset, PY, "-c", _CHILD, root, *args],
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("offset", ["+1d", "-1d", "+400d"])
def test_wall_clock_step_neither_expires_nor_extends_a_lease(tmp_path: Path, offset: str) -> None:
    root = str(tmp_path / "s")
    store = fs.open_store(root)
    claim = store.claim("job", "honest", ttl=120.0)
    out = skewed(root, offset, "put", "job")
    jump = float(out["wall"]) - time.time()  # type: ignore[arg-type]
    assert abs(jump) > 12 * 3600, f"faketime did not step the wall clock ({jump:+.0f}s)"
    assert out["result"] == "ClaimHeldError", "a wall-clock jump expired a live lease"
    assert 0 < float(out["expires_in"]) <= 120.0  # type: ignore[arg-type]
    assert claim.commit({"ok": True}, expected_version=None).value == {"ok": True}

    # A lease granted by a process whose wall clock is skewed is not extended by the skew:
    # it runs out after its ttl on the real clock.
    out = skewed(root, offset, "claim", "short", "0.5")
    assert out["result"] == "claimed"
    deadline = time.monotonic() + 60
    while True:
        try:
            store.put("short", "mine", expected_version=None)
            break
        except fs.ClaimHeldError:
            assert time.monotonic() < deadline, "a skewed process's lease never expired"
            time.sleep(0.2)


def test_lease_does_not_survive_a_reboot(tmp_path: Path) -> None:
    root = str(tmp_path / "s")
    before = fs.open_store(root)
    claim = before.claim("job", "worker", ttl=3600.0)
    claim.commit({"step": 1}, expected_version=0)
    with pytest.raises(fs.ClaimHeldError):
        before.put("job", {"step": "other"}, expected_version=1)

    after = fs.open_store(root, clock=fs.Clock(boot_id="other-boot-" + os.urandom(4).hex()))
    # The hour-long lease from the previous boot is dead: others may write and claim ...
    assert after.put("job", {"step": 2}, expected_version=1).version == 2
    new = after.claim("job", "worker-2", ttl=30.0)
    assert new.epoch == claim.epoch + 1
    # ... and the old holder's commit is fenced, leaving the state untouched.
    with pytest.raises(fs.FencedError):
        claim.commit({"step": "zombie"}, expected_version=2)
    snap = after.get("job")
    assert snap is not None and snap.value == {"step": 2}

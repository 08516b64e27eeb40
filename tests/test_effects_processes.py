"""The effect ledger with real OS processes: kill -9 inside fn, 8 racers, a SIGSTOPped zombie."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _support.procs import CTX, finish, is_stopped, race, read_json, spawn, wait_for

import fencedstate as fs

WORKER = str(Path(__file__).with_name("effects_worker.py"))


def _lines(world: Path) -> list[str]:
    return world.read_text().splitlines() if world.exists() else []


def test_kill_9_inside_fn_leaves_it_in_doubt_never_rerun(tmp_path: Path) -> None:
    store_dir, world = str(tmp_path / "s"), tmp_path / "world.log"
    fs.open_store(store_dir)
    fired = tmp_path / "fired"
    starter = spawn(["-u", WORKER, "hang", store_dir, "mail-1", str(world), str(fired), "3"])
    try:
        wait_for(fired)  # the effect happened; the process has not recorded it
    finally:
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
    assert len(_lines(world)) == 1
    # a resumed run (no probe) waits out the dead starter's lease, then reports it in doubt
    out = tmp_path / "resumed.json"
    finish([spawn([WORKER, "run", store_dir, "mail-1", str(world), str(out)])])
    report = read_json(out)
    assert report["error"] == "EffectInDoubtError" and report["attempt"] == 1, report
    assert report["effect_id"] == "mail-1" and report["owner"].endswith(f":{starter.pid}")
    assert len(_lines(world)) == 1  # never re-run
    # a run with a probe sees the line, records the effect as completed and returns that
    out2 = tmp_path / "probed.json"
    finish([spawn([WORKER, "probe", store_dir, "mail-1", str(world), str(out2)])])
    assert read_json(out2)["result"] == {"observed": _lines(world)[0]}
    assert len(_lines(world)) == 1
    rec = fs.EffectLedger(fs.open_store(store_dir)).get("mail-1")
    assert rec is not None and rec.state == "completed" and rec.probes == 1


def test_kill_9_before_the_effect_probe_says_not_applied_and_it_runs_once(tmp_path: Path) -> None:
    store_dir, world = str(tmp_path / "s"), tmp_path / "world.log"
    store = fs.open_store(store_dir)
    ledger = fs.EffectLedger(store)
    started = tmp_path / "started"

    def die_before_effect(store_dir: str, barrier: Any) -> None:
        del barrier
        led = fs.EffectLedger(fs.open_store(store_dir))

        def fn(token: fs.EffectToken) -> None:
            started.touch()
            os.kill(os.getpid(), signal.SIGKILL)

        led.run("mail-2", fn, ttl=0.5)

    p = CTX.Process(target=die_before_effect, args=(store_dir, None))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL and started.exists()
    out = tmp_path / "probed.json"
    finish([spawn([WORKER, "probe", store_dir, "mail-2", str(world), str(out)])])
    result = read_json(out)["result"]
    assert result["attempt"] == 2 and len(_lines(world)) == 1
    rec = ledger.get("mail-2")
    assert rec is not None and rec.state == "completed" and rec.attempt == 2


def _racer(store_dir: str, world: str, out_dir: str, barrier: Any) -> None:
    ledger = fs.EffectLedger(fs.open_store(store_dir))
    out = Path(out_dir)

    def fire(token: fs.EffectToken) -> dict[str, Any]:
        with open(world, "a") as f:
            f.write(f"{token.id} pid={os.getpid()}\n")
        # the effect takes until every racer is inside run: they find "started" live and wait
        while len(list(out.glob("ready-*"))) < 8:
            time.sleep(0.01)
        return {"charged_by": os.getpid()}

    barrier.wait()
    (out / f"ready-{os.getpid()}").touch()
    result = ledger.run("charge-1", fire, ttl=120)
    (out / f"result-{os.getpid()}.json").write_text(json.dumps(result))
    os._exit(0)


def test_eight_processes_race_one_id_fn_runs_once_all_get_its_result(tmp_path: Path) -> None:
    store_dir, world = str(tmp_path / "s"), tmp_path / "world.log"
    fs.open_store(store_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    race(_racer, [(store_dir, str(world), str(out_dir))] * 8)
    assert len(_lines(world)) == 1
    results = [json.loads(p.read_text()) for p in sorted(out_dir.glob("result-*.json"))]
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert results[0]["charged_by"] == int(_lines(world)[0].rsplit("pid=", 1)[1])


def _zombie(store_dir: str, world: str, conn: Any, go: Any) -> None:
    store = fs.open_store(store_dir)
    ledger = fs.EffectLedger(store)
    claim = store.claim("tasks/7", owner="agent-a", ttl=30)
    conn.send(("ready", claim.epoch))
    go.recv()  # stopped (SIGSTOP) here; the task is reclaimed while it is frozen

    def fire(token: fs.EffectToken) -> str:
        with open(world, "a") as f:
            f.write(f"{token.id} zombie\n")
        return "sent"

    try:
        conn.send(("ran", ledger.run("tasks/7/refund", fire, claim=claim)))
    except fs.FencedError as exc:
        conn.send(("fenced", exc.key, exc.claim_epoch, exc.current_epoch, exc.reason))
    os._exit(0)


def test_sigstopped_starter_reclaimed_is_refused_when_it_resumes(tmp_path: Path) -> None:
    store_dir, world = str(tmp_path / "s"), tmp_path / "world.log"
    store = fs.open_store(store_dir)
    recv, send = CTX.Pipe(duplex=False)
    go_recv, go_send = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_zombie, args=(store_dir, str(world), send, go_recv))
    child.start()
    try:
        assert recv.poll(60)
        assert recv.recv() == ("ready", 1)
        os.kill(child.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while not is_stopped(child.pid):  # type: ignore[arg-type]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert store.reclaim("tasks/7", by="recovery") == 2
        go_send.send("go")
        os.kill(child.pid, signal.SIGCONT)  # type: ignore[arg-type]
        assert recv.poll(60)
        assert recv.recv() == ("fenced", "tasks/7", 1, 2, "reclaimed")
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert _lines(world) == []  # fn never ran
    ledger = fs.EffectLedger(store)
    assert ledger.get("tasks/7/refund") is None  # nothing was started either
    # the new holder runs it: once
    with store.claim("tasks/7", owner="agent-b", ttl=30) as claim:
        assert ledger.run("tasks/7/refund", lambda t: f"sent at epoch {t.epoch}", claim=claim) == (
            "sent at epoch 3"
        )


def _stalls_after_start(store_dir: str, world: str, conn: Any) -> None:
    ledger = fs.EffectLedger(fs.open_store(store_dir))
    execute = ledger._execute

    def stop_then_execute(*args: Any) -> Any:
        conn.send("started")  # "started" is committed; the process stops before calling fn
        os.kill(os.getpid(), signal.SIGSTOP)
        return execute(*args)

    ledger._execute = stop_then_execute  # type: ignore[method-assign]

    def fire(token: fs.EffectToken) -> str:
        with open(world, "a") as f:
            f.write(f"{token.id} zombie\n")
        return "sent"

    try:
        conn.send(("ran", ledger.run("mail-9", fire, ttl=0.5)))
    except fs.EffectNotApplied as exc:
        conn.send(("not_applied", exc.reason))
    os._exit(0)


def test_starter_stopped_past_its_lease_does_not_fire_when_it_resumes(tmp_path: Path) -> None:
    store_dir, world = str(tmp_path / "s"), tmp_path / "world.log"
    ledger = fs.EffectLedger(fs.open_store(store_dir))
    recv, send = CTX.Pipe(duplex=False)
    child = CTX.Process(target=_stalls_after_start, args=(store_dir, str(world), send))
    child.start()
    try:
        assert recv.poll(60) and recv.recv() == "started"
        deadline = time.monotonic() + 60
        while not is_stopped(child.pid):  # type: ignore[arg-type]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # another run finds the stopped starter's lease run out: in doubt, not re-run
        with pytest.raises(fs.EffectInDoubtError) as info:
            ledger.run("mail-9", lambda t: "second")
        assert info.value.attempt == 1
        os.kill(child.pid, signal.SIGCONT)  # type: ignore[arg-type]
        assert recv.poll(60)
        outcome = recv.recv()
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert outcome[0] == "not_applied" and "ran out before fn was called" in outcome[1]
    assert _lines(world) == []  # the zombie never fired
    rec = ledger.get("mail-9")
    assert rec is not None and rec.state == "not_applied"  # a later run may go ahead
    assert ledger.run("mail-9", lambda t: f"sent by attempt {t.attempt}") == "sent by attempt 2"

"""Conformance: a real multi-process run's journal satisfies the spec invariants.

Six OS processes mix update() loops, CAS puts, claims with commits/renews/releases (some with
leases short enough to expire mid-work), reclaims and task acceptances on shared keys, while a
seventh holds a claim, is SIGSTOPped, reclaimed and SIGCONTed (the zombie). Every key's journal
is then checked by ``fencedstate.testing.conformance`` whose predicates are transcribed from the
TLA+ invariants (each cited beside it by name and spec). Negative tests prove the checker
catches doctored journals, and a run with the fence patched out is caught as a stale-epoch commit.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import fencedstate as fs
from fencedstate.core import rules
from fencedstate.testing import conformance as conf

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "conformance_worker.py"
N_WORKERS = 6
ITERS = 40


def _spawn(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKER), *args], text=True, **kw)


def _read_acks(paths: list[Path]) -> list[conf.Ack]:
    acks: list[conf.Ack] = []
    for p in paths:
        if p.exists():
            acks.extend(
                conf.Ack.from_dict(json.loads(line))
                for line in p.read_text().splitlines()
                if line.strip()
            )
    return acks


def _load_check() -> Any:
    spec = importlib.util.spec_from_file_location("specs_check", ROOT / "specs" / "check.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses in check.py look their module up
    spec.loader.exec_module(mod)
    return mod


def tlc_validate(journal: dict[str, list[Any]], tmp: Path) -> tuple[int, str]:
    """Feed a recorded journal to TLC as a trace of specs/trace/JournalTrace.tla."""
    check = _load_check()
    work = tmp / "trace"
    work.mkdir(parents=True)
    for name in ("JournalTrace.tla", "JournalTrace.cfg"):
        shutil.copy(ROOT / "specs" / "trace" / name, work / name)
    (work / "TraceData.tla").write_text(conf.trace_module(journal))
    rc, out, _ = check.run_tlc(
        check.find_jar(), check.find_java(), work, "JournalTrace", 1, deadlock=True
    )
    return rc, out


def _rejected_line(out: str) -> int:
    """The index of the first journal line TLC could not match (from the deadlock trace)."""
    return int(re.findall(r"^/\\ i = (\d+)$", out, re.M)[-1])


def _wait_stopped(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


@pytest.mark.timeout(400)
def test_multiprocess_journal_conforms_to_the_specs(tmp_path: Path) -> None:
    store_dir = str(tmp_path / "store")
    store = fs.open_store(store_dir)
    clock = store.clock
    parent_acks: list[conf.Ack] = []

    def ack(kind: str, key: str, t0: float, **f: Any) -> None:
        parent_acks.append(
            conf.Ack(
                kind=kind,
                key=key,
                t_start=t0,
                t_end=clock.now(),
                boot=clock.boot_id,
                token=f.get("token"),
                version=f.get("version"),
                epoch=f.get("epoch"),
                owner=f.get("owner"),
            )
        )

    # A deterministic claim commit, so the run always has one.
    t0 = clock.now()
    c = store.claim("k/a", owner="parent", ttl=30.0)
    ack("claim", "k/a", t0, epoch=c.epoch, owner="parent")
    token = uuid.uuid4().hex
    t0 = clock.now()
    snap = c.commit(
        {"n": 1, "token": token, "claim_epoch": c.epoch, "owner": "parent"}, expected_version=0
    )
    ack("claim_commit", "k/a", t0, token=token, version=snap.version, epoch=c.epoch, owner="parent")
    c.release()

    ack_files = [tmp_path / f"acks-{i}.jsonl" for i in range(N_WORKERS)] + [tmp_path / "z.jsonl"]
    procs: list[subprocess.Popen[str]] = []
    zombie: subprocess.Popen[str] | None = None
    try:
        zombie = _spawn(
            [store_dir, str(ack_files[-1]), "zombie", "zombie", "k/z"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for i in range(N_WORKERS):
            procs.append(_spawn([store_dir, str(ack_files[i]), f"w{i}", str(1000 + i), str(ITERS)]))
        assert zombie.stdout is not None and zombie.stdin is not None
        ready = zombie.stdout.readline()
        m = re.fullmatch(r"READY (\d+) (\d+)\n", ready)
        assert m, ready
        z_epoch = int(m.group(1))
        os.kill(zombie.pid, signal.SIGSTOP)  # the zombie stalls holding its claim
        _wait_stopped(zombie.pid)
        zombie.stdin.write("GO\n")
        zombie.stdin.flush()
        while True:  # its lease runs out (no fixed sleep: poll the stored lease)
            st = store.state("k/z")
            assert st is not None and st.lease is not None
            if not st.lease.live(clock):
                break
            time.sleep(0.05)
        t0 = clock.now()
        epoch = store.reclaim("k/z", by="recovery")
        ack("reclaim", "k/z", t0, epoch=epoch)
        assert epoch == z_epoch + 1
        t0 = clock.now()
        successor = store.claim("k/z", owner="successor", ttl=60.0)  # version unchanged
        ack("claim", "k/z", t0, epoch=successor.epoch, owner="successor")
        os.kill(zombie.pid, signal.SIGCONT)
        z_out, _ = zombie.communicate(timeout=120)
        assert zombie.returncode == 0, z_out
        assert "FENCED reclaimed" in z_out
        successor.release()
        for p in procs:
            assert p.wait(timeout=300) == 0
    finally:
        for p in [*procs, *([zombie] if zombie else [])]:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait(timeout=30)

    acks = parent_acks + _read_acks(ack_files)
    violations = conf.check_store(store_dir, acks)
    assert violations == [], "\n".join(map(str, violations))

    journal = conf.read_journal(store_dir)
    # Store.history lacks only the lease: it agrees with the raw lines event for event.
    for key, states in journal.items():
        assert store.history(key, limit=None) == [s.event() for s in states]
    # Trace validation: TLC replays the whole recorded journal through JournalTrace.tla.
    rc, out = tlc_validate(journal, tmp_path)
    assert rc == 0 and "No error has been found" in out, out[-3000:]
    kinds = {a.kind for a in acks}
    assert {"put", "claim", "claim_commit", "reclaim", "fenced"} <= kinds
    ops = {s.op for states in journal.values() for s in states}
    assert {"put", "claim", "reclaim", "release"} <= ops
    n_txn = sum(1 for states in journal.values() for s in states if s.txn is not None)
    n_events = sum(len(s) for s in journal.values())
    print(
        f"conformance: {len(journal)} keys, {n_events} events, {len(acks)} acks, "
        + ", ".join(f"{k}={sum(a.kind == k for a in acks)}" for k in sorted(kinds))
        + f", multi-key lines={n_txn}"
    )
    assert n_events > 50


# -- the checker catches what it must -------------------------------------------------------


def _sample_journal(tmp_path: Path) -> tuple[list[Any], list[conf.Ack], str]:
    """A small real journal: claim + tagged commit, reclaim, claimless put, task acceptance."""
    store = fs.open_store(str(tmp_path / "s"))
    clock = store.clock
    acks: list[conf.Ack] = []
    c = store.claim("doc", owner="a", ttl=30.0)
    t0 = clock.now()
    s1 = c.commit({"n": 1, "token": "t1", "claim_epoch": c.epoch, "owner": "a"}, expected_version=0)
    acks.append(
        conf.Ack(
            "claim_commit", "doc", "t1", s1.version, c.epoch, "a", t0, clock.now(), clock.boot_id
        )
    )
    store.reclaim("doc", by="r")
    t0 = clock.now()
    s2 = store.put(
        "doc", {"n": 2, "token": "t2", "claim_epoch": None, "owner": None}, expected_version=1
    )
    acks.append(
        conf.Ack("put", "doc", "t2", s2.version, None, None, t0, clock.now(), clock.boot_id)
    )
    t = store.claim("task/1", owner="b", ttl=30.0)
    t.commit({"status": "accepted", "token": "t3", "claim_epoch": t.epoch, "owner": "b"})
    t.release()
    journal = conf.read_journal(str(tmp_path / "s"))
    events = journal["doc"] + journal["task/1"]
    return events, acks, str(tmp_path / "s")


def _invariants(vs: list[conf.Violation]) -> set[str]:
    return {v.invariant for v in vs}


def test_checker_accepts_a_real_journal(tmp_path: Path) -> None:
    events, acks, d = _sample_journal(tmp_path)
    assert conf.check_journal(events) == []
    assert conf.check_acks(conf.group_by_key(events), acks) == []
    assert conf.check_store(d, acks) == []
    # history() events carry no lease; the journal-only predicates still apply to them
    store = fs.open_store(d)
    assert conf.check_journal(store.history("doc", limit=None)) == []


def test_checker_catches_a_version_gap_and_a_double_accept(tmp_path: Path) -> None:
    events, _, _ = _sample_journal(tmp_path)
    doc = [e for e in events if e.key == "doc"]
    put_i = next(i for i, e in enumerate(doc) if e.op == "put" and e.version == 2)
    gap = [*doc[:put_i], dataclasses.replace(doc[put_i], version=3)]
    vs = conf.check_journal(gap)
    assert _invariants(vs) == {"VersionContiguous"}
    assert vs[0].spec == conf.SPEC_REFS["VersionContiguous"] and vs[0].index == put_i
    first = next(i for i, e in enumerate(doc) if e.op == "put")
    dup = [*doc, dataclasses.replace(doc[first], op="put")]
    assert "OneAcceptPerVersion" in _invariants(conf.check_journal(dup))


def test_checker_catches_a_stale_epoch_commit(tmp_path: Path) -> None:
    events, _, _ = _sample_journal(tmp_path)
    doc = [e for e in events if e.key == "doc"]
    # the zombie: after the reclaim (epoch 2), a commit tagged with the old claim (epoch 1)
    reclaim_i = next(i for i, e in enumerate(doc) if e.op == "reclaim")
    zombie = dataclasses.replace(
        doc[reclaim_i],
        op="put",
        version=doc[reclaim_i].version + 1,
        holder="a",
        value={"claim_epoch": 1, "owner": "a", "token": "z"},
    )
    vs = conf.check_journal([*doc[: reclaim_i + 1], zombie])
    assert _invariants(vs) == {"NoStaleEpochCommit"}
    assert vs[0].spec == conf.SPEC_REFS["NoStaleEpochCommit"]
    # and an epoch that goes back
    back = [*doc, dataclasses.replace(doc[-1], op="renew", epoch=1)]
    assert "EpochMonotonic" in _invariants(conf.check_journal(back))


def test_checker_catches_two_live_holders_and_two_acceptances(tmp_path: Path) -> None:
    events, _, _ = _sample_journal(tmp_path)
    doc = [e for e in events if e.key == "doc"]
    c = doc[0]
    assert c.op == "claim" and c.lease is not None
    # a second grant half-way through the first lease
    lease = dataclasses.replace(c.lease, deadline=c.lease.deadline - c.lease.ttl / 2)
    steal = dataclasses.replace(c, epoch=2, holder="intruder", lease=lease)
    assert _invariants(conf.check_journal([c, steal])) == {"AtMostOneLiveHolder"}
    task = [e for e in events if e.key == "task/1"]
    acc = next(e for e in task if e.op == "put")
    again = dataclasses.replace(acc, version=acc.version + 1, epoch=acc.epoch, holder=acc.holder)
    vs = conf.check_journal([*task[: task.index(acc) + 1], again])
    assert "AtMostOneAcceptance" in _invariants(vs)


def test_checker_catches_lost_acks_fenced_tokens_and_expired_leases(tmp_path: Path) -> None:
    events, acks, _ = _sample_journal(tmp_path)
    journal = conf.group_by_key(events)
    lost = dataclasses.replace(acks[1], token="never-written")
    assert _invariants(conf.check_acks(journal, [lost])) == {"NoLostAck"}
    fenced = dataclasses.replace(acks[1], kind="fenced")  # t2 was "rejected" yet is there
    assert _invariants(conf.check_acks(journal, [fenced])) == {"NoStaleEpochCommit"}
    late = dataclasses.replace(acks[0], t_start=acks[0].t_start + 3600)
    assert _invariants(conf.check_acks(journal, [late])) == {"NoExpiredLeaseCommit"}
    # a claimless put acknowledged while a live claim was held
    doc = journal["doc"]
    held = [doc[0], dataclasses.replace(doc[1], value={"token": "p"}, op="put")]
    put = conf.Ack(
        "put",
        "doc",
        "p",
        doc[1].version,
        None,
        None,
        acks[0].t_start,
        acks[0].t_start,
        acks[0].boot,
    )
    assert _invariants(conf.check_acks({"doc": held}, [put])) == {"NoPutUnderLiveClaim"}


def test_checker_catches_a_mixed_line(tmp_path: Path) -> None:
    _, _, d = _sample_journal(tmp_path)
    log = Path(d) / "data" / "doc.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    torn = lines[0][: len(lines[0]) // 2]  # torn bytes glued to the next line: one bad line
    log.write_bytes(torn + b"".join(lines[1:]) + b'{"op":"pu')
    vs = conf.check_log_file(str(log), "doc")
    assert _invariants(vs) == {"OldOrNewNeverMixed"}
    assert len(vs) == 1 and vs[0].index == 0  # the torn tail at the very end is allowed
    assert "OldOrNewNeverMixed" in _invariants(conf.check_store(d))


def test_a_store_with_the_fence_patched_out_fails_conformance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python twin of mutant ZombieFencing_VersionOnlyCommit, on the real store."""
    store = fs.open_store(str(tmp_path / "m"))
    c = store.claim("doc", owner="zombie", ttl=30.0)
    snap = c.read()
    store.reclaim("doc", by="recovery")
    monkeypatch.setattr(rules, "check_fence", lambda cur, claim, clock: None)
    c.commit(
        {"token": "z", "claim_epoch": c.epoch, "owner": "zombie"},
        expected_version=0 if snap is None else snap.version,
    )
    vs = conf.check_store(str(tmp_path / "m"))
    assert "NoStaleEpochCommit" in _invariants(vs), vs
    # TLC rejects the same journal: the zombie's commit (line 2) matches no spec action
    journal = conf.read_journal(str(tmp_path / "m"))
    assert [s.op for s in journal["doc"]] == ["claim", "reclaim", "put"]
    rc, out = tlc_validate(journal, tmp_path)
    assert rc == 11 and "Deadlock reached" in out, out[-3000:]
    assert _rejected_line(out) == 2


def test_tlc_trace_validation_accepts_a_real_journal_and_rejects_doctored_ones(
    tmp_path: Path,
) -> None:
    _, _, d = _sample_journal(tmp_path)
    journal = conf.read_journal(d)
    rc, out = tlc_validate(journal, tmp_path / "ok")
    assert rc == 0, out[-3000:]
    doc = journal["doc"]
    put_i = next(i for i, e in enumerate(doc) if e.op == "put" and e.version == 2)
    gap = {"doc": [*doc[:put_i], dataclasses.replace(doc[put_i], version=3)]}
    rc, out = tlc_validate(gap, tmp_path / "gap")
    assert rc == 11 and _rejected_line(out) == put_i


def test_cited_spec_lines_define_their_invariants() -> None:
    for name, ref in conf.SPEC_REFS.items():
        path, operator = ref.split("!")
        assert operator == name
        text = (ROOT / path).read_text().splitlines()
        assert any(line.startswith(f"{name} ==") for line in text), f"{path} does not define {name}"
    src = (ROOT / "src" / "fencedstate" / "testing" / "conformance.py").read_text()
    for name, ref in conf.SPEC_REFS.items():
        spec = ref.split("/", 1)[1].split("!")[0]
        assert f"{name} ({spec})" in src, f"predicate {name} lacks its citation"


def test_ack_records_are_validated() -> None:
    with pytest.raises(fs.InvalidArgumentError):
        conf.Ack.from_dict({"kind": "bogus", "key": "k", "t_start": 0, "t_end": 0, "boot": "b"})
    with pytest.raises(fs.InvalidArgumentError):
        conf.Ack.from_dict({"kind": "put", "key": "k"})
    with pytest.raises(fs.InvalidArgumentError):
        conf.Ack.from_dict(
            {"kind": "put", "key": "k", "version": "3", "t_start": 0, "t_end": 0, "boot": "b"}
        )


def test_compacted_logs_are_checked_from_their_first_retained_line(tmp_path: Path) -> None:
    d = str(tmp_path / "c")
    store = fs.FileStore(d, history_limit=5, compact_bytes=4096)
    clock = store.clock
    acks: list[conf.Ack] = []
    for v in range(1, 81):
        t0 = clock.now()
        snap = store.put("doc", {"token": f"t{v}", "pad": "x" * 100}, expected_version=v - 1)
        acks.append(
            conf.Ack(
                "put", "doc", f"t{v}", snap.version, None, None, t0, clock.now(), clock.boot_id
            )
        )
    journal = conf.read_journal(d)
    assert journal["doc"][0].version > 1  # compaction happened
    assert not conf.starts_empty(journal["doc"])
    assert conf.check_store(d, acks) == []
    # the acks that are still retained are checked: a lost one is caught
    lost = dataclasses.replace(acks[-1], token="other")
    assert _invariants(conf.check_store(d, [lost])) == {"NoLostAck"}

"""Soak: mixed claims, commits, reclaims, kill -9s and SIGSTOP stalls across 8 processes.

    python bench/soak.py --minutes 30          # the full soak (not in CI)
    python bench/soak.py --minutes 2 --json    # the CI version (tests/hardening/test_soak.py)

Workers write what each call returned (``conformance.Ack`` records) to their own file; at the
end the spec-derived checker (``fencedstate.testing.conformance.check_store``) checks the raw
logs, the journal invariants and every acknowledgement. Each worker also logs every invoke and
return (``fencedstate.testing.linearizability.Recorder``); the merged client-observed history
must be linearizable. Reports ops done, faults injected (kills and
stalls), violations (must be 0), worker memory and store file-count/size growth (bounded: one
lock file per key, no temp file or intent left, each log compacted at ``compact_bytes``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import bench_args  # bench/ is sys.path[0] when run as a script

KEYS = [f"soak/k{i}" for i in range(6)]
COMPACT_BYTES = 64 * 1024


def worker(root: str, acks_path: str, seed: int, deadline: float) -> None:
    """One worker process: random operations until ``deadline`` (wall clock of the parent)."""
    import fencedstate as fs
    from fencedstate.testing.linearizability import Recorder

    rng = random.Random(seed)
    store = fs.open_store(root, compact_bytes=COMPACT_BYTES, history_limit=200, lock_timeout=30.0)
    # What this client saw: every invoke and return, flushed per line (linearizability check).
    rec = Recorder(store, acks_path + ".history", f"p{seed}")
    clock = store.clock
    out = open(acks_path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    owner = f"w{seed}"

    def ack(kind: str, key: str, t0: float, **kw: Any) -> None:
        rec = {
            "kind": kind,
            "key": key,
            "t_start": t0,
            "t_end": clock.now(),
            "boot": clock.boot_id,
            "owner": kw.pop("owner", None),
            **kw,
        }
        out.write(json.dumps(rec) + "\n")
        out.flush()

    ops = 0
    while time.time() < deadline:
        key = rng.choice(KEYS)
        r = rng.random()
        try:
            if r < 0.5:  # claimless compare-and-set
                snap = rec.get(key)
                token = uuid.uuid4().hex
                t0 = clock.now()
                new = rec.put(
                    key,
                    {"token": token, "claim_epoch": None, "owner": None},
                    0 if snap is None else snap.version,
                )
                ack("put", key, t0, token=token, version=new.version)
            elif r < 0.9:  # claim, a few commits, release (or abandon)
                t0 = clock.now()
                claim = rec.claim(key, owner, rng.uniform(0.3, 2.0))
                ack("claim", key, t0, epoch=claim.epoch, owner=owner)
                for _ in range(rng.randrange(1, 4)):
                    token = uuid.uuid4().hex
                    cur = rec.get(key)
                    t0 = clock.now()
                    try:
                        new = rec.commit(
                            claim,
                            {"token": token, "claim_epoch": claim.epoch, "owner": owner},
                            0 if cur is None else cur.version,
                        )
                    except fs.FencedError:
                        ack("fenced", key, t0, token=token, epoch=claim.epoch, owner=owner)
                        break
                    ack(
                        "claim_commit",
                        key,
                        t0,
                        token=token,
                        version=new.version,
                        epoch=claim.epoch,
                        owner=owner,
                    )
                if rng.random() < 0.8:
                    rec.release(claim)
            else:
                t0 = clock.now()
                epoch = rec.reclaim(key, owner)
                ack("reclaim", key, t0, epoch=epoch)
        except (fs.ConflictError, fs.ClaimHeldError, fs.FencedError, fs.LockTimeoutError):
            pass
        ops += 1
    out.close()
    rec.close()


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _files(root: str) -> dict[str, int]:
    counts = {"data_files": 0, "data_bytes": 0, "lock_files": 0, "temp_files": 0, "intents": 0}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if n.endswith(".tmp"):
                counts["temp_files"] += 1
            elif n.endswith(".jsonl"):
                counts["data_files"] += 1
                counts["data_bytes"] += os.path.getsize(p)
            elif n.endswith(".lock"):
                counts["lock_files"] += 1
            elif os.path.basename(dirpath) == "txn":
                counts["intents"] += 1
    return counts


def soak(minutes: float, procs: int, root: str, seed: int) -> dict[str, Any]:
    """Run the soak and return its report."""
    from fencedstate.testing import conformance

    rng = random.Random(seed)
    acks_dir = os.path.join(root, "..", "acks")
    os.makedirs(acks_dir, exist_ok=True)
    end = time.time() + minutes * 60
    n_spawned = 0
    deaths: dict[str, float] = {}  # worker -> monotonic_ns by which it was dead (kill -9)

    def spawn() -> subprocess.Popen[bytes]:
        nonlocal n_spawned
        n_spawned += 1
        path = os.path.join(acks_dir, f"{n_spawned}.jsonl")
        return subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                root,
                path,
                str(seed * 1000 + n_spawned),
                str(end),
            ]
        )

    workers = [spawn() for _ in range(procs)]
    kills = stalls = 0
    samples: list[dict[str, int]] = []
    last_sample = 0.0
    try:
        while time.time() < end:
            time.sleep(rng.uniform(0.3, 1.2))
            if time.time() >= end - 1:
                break
            i = rng.randrange(procs)
            if rng.random() < 0.5:
                workers[i].send_signal(signal.SIGKILL)
                workers[i].wait()
                deaths[f"p{workers[i].args[5]}"] = time.monotonic_ns()  # type: ignore[index]
                workers[i] = spawn()
                kills += 1
            else:
                workers[i].send_signal(signal.SIGSTOP)
                time.sleep(rng.uniform(0.3, 2.5))  # long enough for its lease to run out
                workers[i].send_signal(signal.SIGCONT)
                stalls += 1
            if time.time() - last_sample > 10:
                last_sample = time.time()
                sample = _files(root)
                sample["worker_rss_kb"] = sum(_rss_kb(w.pid) for w in workers)
                samples.append(sample)
        for w in workers:
            w.wait(timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGCONT)
                w.kill()
                w.wait()
    acks: list[Any] = []
    for name in os.listdir(acks_dir):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(acks_dir, name), encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):  # a worker killed mid-write leaves a partial last line
                    acks.append(conformance.Ack.from_dict(json.loads(line)))
    # Recover and clean up the way a restarted system would: open the store once.
    import fencedstate as fs

    fs.open_store(root).close()
    # check_store skips acks below a compacted log's first retained version; a commit AT that
    # version is gone too when the first retained line is a claim/release/reclaim after it.
    first = {
        k: e[0]
        for k, e in conformance.read_journal(root).items()
        if e and not conformance.starts_empty(e)
    }
    acks = [
        a
        for a in acks
        if not (
            a.key in first
            and a.version is not None
            and a.kind in ("put", "claim_commit")
            and a.version == first[a.key].version
            and first[a.key].op not in conformance.COMMIT_OPS
        )
    ]
    violations = [str(v) for v in conformance.check_store(root, acks)]
    final = _files(root)
    # Client-observed histories: is there a legal sequential order? (printed to stderr)
    from fencedstate.testing import linearizability

    histories = [
        os.path.join(acks_dir, n) for n in sorted(os.listdir(acks_dir)) if n.endswith(".history")
    ]
    lin = linearizability.report(histories, out=sys.stderr, deaths=deaths)
    return {
        "minutes": minutes,
        "processes": procs,
        "ops_acknowledged": len(acks),
        "ops_by_kind": {
            k: sum(1 for a in acks if a.kind == k)
            for k in ("put", "claim", "claim_commit", "reclaim", "fenced")
        },
        "faults_injected": kills + stalls,
        "kill9": kills,
        "sigstop_stalls": stalls,
        "violations": len(violations),
        "violation_samples": violations[:10],
        "linearizability": {
            "ops": lin.ops,
            "keys": lin.keys,
            "unknown": lin.unknown,
            "linearizable": lin.ok,
            "seconds": round(lin.seconds, 3),
        },
        "first_sample": samples[0] if samples else None,
        "last_sample": samples[-1] if samples else None,
        "final_files": final,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--dir", default=None, help="work directory (default: a new temp dir)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the report as one JSON line")
    args = ap.parse_args()
    bench_args.positive(ap, args, "--minutes")
    bench_args.at_least_one(ap, args, "--procs")
    base = args.dir or tempfile.mkdtemp(prefix="fencedstate-soak-")
    report = soak(args.minutes, args.procs, os.path.join(base, "store"), args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k:>20}: {v}")
    sys.exit(1 if report["violations"] or not report["linearizability"]["linearizable"] else 0)


if __name__ == "__main__":
    main()

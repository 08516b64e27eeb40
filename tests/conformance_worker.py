"""A conformance worker: one OS process doing a seeded random mix of store operations.

Usage: python conformance_worker.py STORE_DIR ACK_FILE NAME SEED ITERATIONS
       python conformance_worker.py STORE_DIR ACK_FILE NAME zombie KEY

Every acknowledged operation is appended to ACK_FILE as one JSON line (a
``fencedstate.testing.conformance.Ack``), with lease-clock times taken around the call. Values carry
the tags the checker reads (token, claim_epoch, owner, status).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
import uuid
from typing import Any, TextIO

import fencedstate as fs

KEYS = ("k/a", "k/b", "k/c")
TASKS = tuple(f"task/{i}" for i in range(4))


class Recorder:
    """Appends ack records to a file, flushed per record (survives a later kill)."""

    def __init__(self, store: fs.FileStore, f: TextIO) -> None:
        self.store, self.f = store, f

    def now(self) -> float:
        return self.store.clock.now()

    def ack(self, kind: str, key: str, t0: float, **fields: Any) -> None:
        rec = {
            "kind": kind,
            "key": key,
            "t_start": t0,
            "t_end": self.now(),
            "boot": self.store.clock.boot_id,
            **fields,
        }
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


def value(n: int, token: str, claim: fs.Claim | None, **extra: Any) -> dict[str, Any]:
    return {
        "n": n,
        "token": token,
        "claim_epoch": None if claim is None else claim.epoch,
        "owner": None if claim is None else claim.owner,
        **extra,
    }


def count(snap: fs.Snapshot | None) -> int:
    return int(snap.value.get("n", 0)) if snap is not None and isinstance(snap.value, dict) else 0


def do_update(r: Recorder, name: str, key: str) -> None:
    token = uuid.uuid4().hex
    t0 = r.now()
    snap = r.store.update(
        key,
        lambda old: value((old or {}).get("n", 0) + 1 if isinstance(old, dict) else 1, token, None),
        writer=name,
    )
    r.ack("put", key, t0, token=token, version=snap.version)


def do_cas(r: Recorder, name: str, key: str) -> None:
    snap = r.store.get(key)
    token = uuid.uuid4().hex
    t0 = r.now()
    new = r.store.put(
        key,
        value(count(snap) + 1, token, None),
        expected_version=0 if snap is None else snap.version,
        writer=name,
    )
    r.ack("put", key, t0, token=token, version=new.version)


def do_many(r: Recorder, name: str, keys: list[str]) -> None:
    """An atomic multi-key compare-and-set (put_many) over two keys."""
    snaps = {k: r.store.get(k) for k in keys}
    tokens = {k: uuid.uuid4().hex for k in keys}
    t0 = r.now()
    out = r.store.put_many(
        {
            k: (
                value(count(snaps[k]) + 1, tokens[k], None),
                0 if snaps[k] is None else snaps[k].version,
            )
            for k in keys
        },
        writer=name,
    )
    for k in keys:
        r.ack("put", k, t0, token=tokens[k], version=out[k].version)


def do_claim_work(r: Recorder, rng: random.Random, name: str, key: str) -> None:
    ttl = rng.choice((0.05, 0.5, 2.0))
    t0 = r.now()
    claim = r.store.claim(key, owner=name, ttl=ttl)
    r.ack("claim", key, t0, epoch=claim.epoch, owner=name)
    for _ in range(rng.randint(1, 3)):
        snap = claim.read()
        if rng.random() < 0.2:
            time.sleep(0.06)  # sometimes outlive a short lease
        token = uuid.uuid4().hex
        expected = rng.choice((None, 0 if snap is None else snap.version))
        t0 = r.now()
        try:
            new = claim.commit(value(count(snap) + 1, token, claim), expected_version=expected)
        except fs.FencedError:
            r.ack("fenced", key, t0, token=token, epoch=claim.epoch, owner=name)
            return
        except fs.ConflictError:
            continue
        r.ack(
            "claim_commit", key, t0, token=token, version=new.version, epoch=claim.epoch, owner=name
        )
        if rng.random() < 0.3:
            try:
                claim.renew()
            except fs.FencedError:
                return
    if rng.random() < 0.7:
        claim.release()


def do_reclaim(r: Recorder, name: str, key: str) -> None:
    t0 = r.now()
    epoch = r.store.reclaim(key, by=name)
    r.ack("reclaim", key, t0, epoch=epoch)


def do_accept(r: Recorder, name: str, task: str) -> None:
    """Accept the task if still open, relying on the claim alone (no expected_version)."""
    t0 = r.now()
    claim = r.store.claim(task, owner=name, ttl=1.0)
    r.ack("claim", task, t0, epoch=claim.epoch, owner=name)
    try:
        snap = claim.read()
        if snap is None or (isinstance(snap.value, dict) and snap.value.get("status") == "open"):
            token = uuid.uuid4().hex
            t0 = r.now()
            try:
                new = claim.commit(value(1, token, claim, status="accepted", by=name))
            except fs.FencedError:
                r.ack("fenced", task, t0, token=token, epoch=claim.epoch, owner=name)
                return
            r.ack(
                "claim_commit",
                task,
                t0,
                token=token,
                version=new.version,
                epoch=claim.epoch,
                owner=name,
            )
    finally:
        claim.release()


def mixed(store_dir: str, ack_file: str, name: str, seed: int, iters: int) -> int:
    rng = random.Random(seed)
    store = fs.open_store(store_dir)
    with open(ack_file, "a", encoding="utf-8") as f:
        r = Recorder(store, f)
        for _ in range(iters):
            action = rng.choices(
                ("update", "cas", "claim", "reclaim", "accept", "many"), weights=(4, 3, 4, 1, 2, 2)
            )[0]
            try:
                if action == "update":
                    do_update(r, name, rng.choice(KEYS))
                elif action == "cas":
                    do_cas(r, name, rng.choice(KEYS))
                elif action == "claim":
                    do_claim_work(r, rng, name, rng.choice(KEYS))
                elif action == "many":
                    do_many(r, name, rng.sample(KEYS, 2))
                elif action == "reclaim":
                    do_reclaim(r, name, rng.choice(KEYS))
                else:
                    do_accept(r, name, rng.choice(TASKS))
            except (fs.ConflictError, fs.ClaimHeldError, fs.FencedError, fs.LockTimeoutError):
                pass  # the typed refusals the spec allows; nothing was acknowledged
    return 0


def zombie(store_dir: str, ack_file: str, name: str, key: str) -> int:
    """Claim, read, stop (SIGSTOP from the parent), then try to commit at the read version."""
    store = fs.open_store(store_dir)
    with open(ack_file, "a", encoding="utf-8") as f:
        r = Recorder(store, f)
        t0 = r.now()
        claim = store.claim(key, owner=name, ttl=0.5)
        r.ack("claim", key, t0, epoch=claim.epoch, owner=name)
        snap = claim.read()
        print(f"READY {claim.epoch} {0 if snap is None else snap.version}", flush=True)
        sys.stdin.readline()  # the parent stops us before sending GO, resumes us after
        token = uuid.uuid4().hex
        t0 = r.now()
        try:
            claim.commit(
                value(count(snap) + 1, token, claim),
                expected_version=0 if snap is None else snap.version,
            )
        except fs.FencedError as exc:
            r.ack("fenced", key, t0, token=token, epoch=claim.epoch, owner=name)
            print(f"FENCED {exc.reason}", flush=True)
            return 0
        print("ACCEPTED", flush=True)
        return 3


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    store_dir, ack_file, name, mode = argv[1], argv[2], argv[3], argv[4]
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if mode == "zombie":
        return zombie(store_dir, ack_file, name, argv[5])
    return mixed(store_dir, ack_file, name, int(mode), int(argv[5]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Per-key locks: ``flock`` on one file per key vs open-file-description byte-range locks
(``F_OFD_SETLK``) on a fixed set of striped files, and what each costs in files and disk.

    python bench/lock_table.py [--keys 100000] [--stripes 64] [--dir DIR]

Prints, per scheme: acquire + release + wake-up touch (``futimens``) of a lock already open,
the first use of a lock not yet open (the cost a reader or writer pays at 100,000 keys, where
no cache of open files holds every key), and the files and bytes on disk for ``--keys`` keys.
One process, uncontended; medians of 5 rounds. Figures on a shared, loaded machine are noisy:
compare the two schemes of one run, not runs.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

import bench_args  # bench/ is sys.path[0] when run as a script
from peers.costkey import disk_usage  # bench/ is sys.path[0] when run as a script

_FLOCK = struct.Struct("hhqqi4x")  # struct flock: l_type, l_whence, l_start, l_len, l_pid
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC


def _ofd(fd: int, kind: int, start: int, cmd: int = fcntl.F_OFD_SETLK) -> None:
    fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, start, 1, 0))


def _h(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") >> 2


def _per_op(fn: object, n: int) -> float:
    assert callable(fn)
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def flock_per_file(root: str, keys: list[str], held: int) -> dict[str, float]:
    paths = [os.path.join(root, hashlib.sha1(k.encode()).hexdigest() + ".lock") for k in keys]
    fds = [os.open(p, _FLAGS, 0o600) for p in paths[:held]]  # the "kept open" cache

    def warm(i: int) -> None:
        fd = fds[i % held]
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.utime(fd)

    def cold(i: int) -> None:  # open, lock, unlock, touch, close: a lock not in the cache
        fd = os.open(paths[i % len(paths)], _FLAGS, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.utime(fd)
        os.close(fd)

    for p in paths:  # every key has its lock file (and, today, its sync file)
        os.close(os.open(p, _FLAGS, 0o600))
        os.close(os.open(p[: -len(".lock")] + ".sync", _FLAGS, 0o600))
    out = {"warm_us": _per_op(warm, 20000), "cold_us": _per_op(cold, min(len(paths), 20000))}
    for fd in fds:
        os.close(fd)
    files, disk = disk_usage(Path(root))
    out["files"], out["disk"] = files, disk
    return out


def ofd_striped(root: str, keys: list[str], stripes: int) -> dict[str, float]:
    fds = [os.open(os.path.join(root, f"{s:02x}.lock"), _FLAGS, 0o600) for s in range(stripes)]
    hashes = [_h(k) for k in keys]

    def lock(i: int) -> None:
        h = hashes[i % len(hashes)]
        fd = fds[h % stripes]
        _ofd(fd, fcntl.F_WRLCK, 2 * h)
        _ofd(fd, fcntl.F_UNLCK, 2 * h)
        os.utime(fd)

    def lock_hash(i: int) -> None:  # including hashing the key (what a cold lock pays)
        h = _h(keys[i % len(keys)])
        fd = fds[h % stripes]
        _ofd(fd, fcntl.F_WRLCK, 2 * h)
        _ofd(fd, fcntl.F_UNLCK, 2 * h)
        os.utime(fd)

    out = {"warm_us": _per_op(lock, 20000), "cold_us": _per_op(lock_hash, 20000)}
    # A second open file description of the same file conflicts: the lock really excludes.
    other = os.open(os.path.join(root, f"{hashes[0] % stripes:02x}.lock"), _FLAGS)
    _ofd(fds[hashes[0] % stripes], fcntl.F_WRLCK, 2 * hashes[0])
    try:
        _ofd(other, fcntl.F_WRLCK, 2 * hashes[0])
        raise SystemExit("OFD lock did not exclude a second open file description")
    except OSError:
        pass
    finally:
        os.close(other)
    for fd in fds:
        os.close(fd)
    files, disk = disk_usage(Path(root))
    out["files"], out["disk"] = files, disk
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--stripes", type=int, default=64)
    ap.add_argument("--dir", help="where to create the lock files (default: a temp dir)")
    args = ap.parse_args()
    bench_args.at_least_one(ap, args, "--keys", "--stripes")
    keys = [f"bulk/{i // 1000:03d}/k{i}" for i in range(args.keys)]
    base = tempfile.mkdtemp(prefix="locktable-", dir=args.dir)
    try:
        rows = []
        for name, run in (
            (
                "flock, one file per key (+ a sync file)",
                lambda d: flock_per_file(d, keys, min(512, len(keys))),
            ),
            (
                f"OFD byte range, {args.stripes} striped files",
                lambda d: ofd_striped(d, keys, args.stripes),
            ),
        ):
            d = os.path.join(base, str(len(rows)))
            os.mkdir(d)
            rows.append((name, run(d)))
        print(f"{args.keys:,} keys; us per acquire+release+touch (median of 5 rounds)")
        print(f"{'scheme':45} {'open lock':>10} {'not open':>10} {'files':>9} {'disk':>12}")
        for name, r in rows:
            print(
                f"{name:45} {r['warm_us']:>9.2f}u {r['cold_us']:>9.2f}u "
                f"{int(r['files']):>9,} {int(r['disk']) / 1e6:>9.1f} MB"
            )
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()

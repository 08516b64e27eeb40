"""``fencedstate check DIR``: read a file store end to end and report what is wrong with it.

``check`` reads every log, intent and lock file without taking any lock and never writes,
unless ``quarantine=True``: then each damaged log is moved aside to ``<log>.damaged-<time>``
(never deleted) and replaced by a one-line marker that every reader and writer refuses with
``CorruptStateError``, so the key reads as damaged, never as empty, until the user either puts
back a good copy (``restore``), keeps the valid prefix of the log with its versions and epochs
(``salvage``), or resets the key, naming the damaged bytes' SHA-256 (``reset``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from .core.keys import relpath_to_key
from .errors import CorruptStateError, FencedStateError, InvalidArgumentError
from .file import keylog
from .file.filestore import MARKER
from .file.repair import Salvage, aside_of, check_store_marker, reset, restore, salvage
from .file.repair import quarantine as quarantine_log
from .locations import is_url
from .records import QUARANTINE_MARK

__all__ = [
    "CheckReport",
    "Damage",
    "LogScan",
    "Salvage",
    "check",
    "main",
    "render",
    "reset",
    "restore",
    "salvage",
    "scan",
]


@dataclass
class Damage:
    """One damaged log: its key, file, the byte offset of the first bad byte, why, and the
    SHA-256 of its bytes (None when nothing could be read: a FIFO, a symlink, ...)."""

    key: str
    path: str
    offset: int
    reason: str
    sha256: str | None
    quarantined_to: str | None = None


@dataclass
class CheckReport:
    """What ``check`` found. ``clean`` is True when nothing needs the user's attention."""

    root: str
    keys: int = 0
    lines: int = 0
    torn_tails: list[tuple[str, int, int]] = field(default_factory=list)  # key, offset, bytes
    damaged: list[Damage] = field(default_factory=list)
    pending_intents: list[str] = field(default_factory=list)
    orphan_temps: list[str] = field(default_factory=list)
    permission_problems: list[tuple[str, str]] = field(default_factory=list)
    quarantined_keys: list[tuple[str, str]] = field(default_factory=list)  # key, aside file

    @property
    def clean(self) -> bool:
        """No damage, no permission problem, no key left quarantined."""
        return not (self.damaged or self.permission_problems or self.quarantined_keys)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of the report."""
        out = asdict(self)
        out["clean"] = self.clean
        return out


def check(path: str | os.PathLike[str], *, quarantine: bool = False) -> CheckReport:
    """Check the file store at ``path``; ``StorageError``/``CorruptStateError`` if it cannot."""
    root = os.path.realpath(os.fspath(path))
    check_store_marker(root)
    report = CheckReport(root)
    uid = os.geteuid()
    _perm(report, root, True, uid)
    _perm(report, os.path.join(root, MARKER), False, uid)
    for name in os.listdir(root):
        if name.endswith(".tmp"):
            report.orphan_temps.append(os.path.join(root, name))
    data = os.path.join(root, "data")
    for sub in ("data", "locks"):
        if os.path.isdir(os.path.join(root, sub)):
            _walk_perms(report, os.path.join(root, sub), uid)
    txn = os.path.join(root, "txn")
    if os.path.isdir(txn):
        _walk_perms(report, txn, uid)
        for name in sorted(os.listdir(txn)):
            full = os.path.join(txn, name)
            if name.endswith(".json"):
                report.pending_intents.append(full)
            elif name.endswith(".tmp"):
                report.orphan_temps.append(full)
    for dirpath, dirnames, filenames in os.walk(data):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, data)
        for name in sorted(filenames + [d for d in dirnames if d.endswith(".jsonl")]):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if name.endswith(".tmp"):
                report.orphan_temps.append(full)
                continue
            key = relpath_to_key(rel)
            if key is None:
                continue
            report.keys += 1
            _check_log(report, key, full, quarantine)
        dirnames[:] = [d for d in dirnames if not d.endswith(".jsonl")]
    return report


def _perm(report: CheckReport, path: str, is_dir: bool, uid: int) -> None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        report.permission_problems.append((path, f"cannot stat: {exc.strerror}"))
        return
    want = 0o700 if is_dir else 0o600
    mode = stat.S_IMODE(st.st_mode)
    if mode != want:
        report.permission_problems.append((path, f"mode {mode:04o}, expected {want:04o}"))
    if st.st_uid != uid:
        report.permission_problems.append((path, f"owned by uid {st.st_uid}, not {uid}"))


def _walk_perms(report: CheckReport, top: str, uid: int) -> None:
    _perm(report, top, True, uid)
    for dirpath, dirnames, filenames in os.walk(top):
        for d in dirnames:
            _perm(report, os.path.join(dirpath, d), True, uid)
        for f in filenames:
            _perm(report, os.path.join(dirpath, f), False, uid)


def _check_log(report: CheckReport, key: str, path: str, quarantine: bool) -> None:
    try:
        data = keylog.read_regular(path)  # never follows a symlink, never waits on a FIFO
    except CorruptStateError as exc:  # a symlink, a FIFO, a directory, ...: nothing read
        report.damaged.append(Damage(key, path, 0, exc.detail, None))
        return
    except OSError as exc:
        report.damaged.append(Damage(key, path, 0, f"cannot read: {exc.strerror}", None))
        return
    if data.startswith(QUARANTINE_MARK):
        report.quarantined_keys.append((key, aside_of(data)))
        return
    found = scan(data, key, path)
    report.lines += found.lines
    if found.reason is None:
        if found.torn:
            report.torn_tails.append((key, data.rfind(b"\n") + 1, found.torn))
        return
    damage = Damage(key, path, found.offset, found.reason, hashlib.sha256(data).hexdigest())
    if quarantine:
        damage.quarantined_to = quarantine_log(report.root, key, path, data)
    report.damaged.append(damage)


class LogScan(NamedTuple):
    """What ``scan`` found in one log."""

    offset: int  # of the first bad byte (0 if none)
    reason: str | None  # why it is bad, None if the log is valid
    lines: int  # good lines
    torn: int  # bytes of a torn tail (a crash mid-write; not damage)


def scan(data: bytes, key: str, where: str) -> LogScan:
    """Read one log's bytes: where it goes bad and why, its good lines and torn tail."""
    result = keylog.scan_log(data, where, key)
    return LogScan(result.bad_offset or 0, result.reason, len(result.states), result.torn_bytes)


def render(report: CheckReport) -> str:
    """The report as text: a summary and an aligned table of findings."""
    rows: list[tuple[str, str, str, str]] = []
    for d in report.damaged:
        what = f"damaged; moved to {d.quarantined_to}" if d.quarantined_to else "damaged"
        hashed = f" (sha256 {d.sha256})" if d.sha256 else ""  # nothing read, nothing hashed
        rows.append((what, d.key, str(d.offset), d.reason + hashed))
    for key, aside in report.quarantined_keys:
        rows.append(("quarantined", key, "-", f"damaged bytes at {aside}"))
    for p, why in report.permission_problems:
        rows.append(("permissions", p, "-", why))
    for key, offset, n in report.torn_tails:
        rows.append(("torn tail (harmless)", key, str(offset), f"{n} bytes"))
    for p in report.pending_intents:
        rows.append(("pending intent", p, "-", "completed by the next store operation"))
    for p in report.orphan_temps:
        rows.append(("orphan temp file", p, "-", "left by a killed writer"))
    out = [
        f"store {report.root}: {report.keys} keys, {report.lines} lines, "
        f"{len(report.damaged)} damaged, {len(report.torn_tails)} torn tails, "
        f"{len(report.pending_intents)} pending intents, {len(report.orphan_temps)} orphan "
        f"temp files, {len(report.permission_problems)} permission problems: "
        + ("clean" if report.clean else "DAMAGE FOUND")
    ]
    if rows:
        head = ("finding", "key/file", "offset", "detail")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
        for r in [head, *rows]:
            out.append(
                "  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
            )
    return "\n".join(out)


def _local_dir(target: str) -> str:
    """The directory ``check`` reads: a path, or a ``file://`` URL's path; a server URL is an
    ``InvalidArgumentError`` (each server checks its own data)."""
    if not is_url(target):
        return target
    parts = urlsplit(target)
    if parts.scheme.lower() == "file":
        return unquote(parts.path)
    raise InvalidArgumentError(
        f"check reads a file store directory; {target.split('://')[0]}:// stores are checked by "
        f"their server, not by fencedstate check (copy one to a directory to check it)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``fencedstate check``: exit 0 clean, 1 damage found, 2 could not run."""
    from .cli.errors import Parser, parse

    parser = Parser(
        prog="fencedstate check",
        description=(
            "Read every log, intent and lock file of a file store, without taking a lock, and "
            "report what is damaged. Nothing is written unless an option says so: --quarantine "
            "moves each damaged log aside (never deleted) so the key reads as damaged, never as "
            "missing; then --salvage, --restore-from or --reset settles one key."
        ),
        epilog="exit codes: 0 clean, 1 damage found, 2 could not run. Details: docs/cli.md.",
    )
    parser.add_argument("dir", help="a file store directory (never created)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--quarantine",
        action="store_true",
        help="move damaged logs aside (never deleted); the key reads as damaged",
    )
    parser.add_argument(
        "--restore-from",
        nargs=2,
        metavar=("FILE", "KEY"),
        help="put a good copy of KEY's log back in place of a damaged one",
    )
    parser.add_argument(
        "--salvage",
        metavar="KEY",
        help="keep the valid prefix of KEY's damaged log, versions and epochs (the rest: aside)",
    )
    parser.add_argument(
        "--reset",
        nargs=2,
        metavar=("KEY", "SHA256"),
        help="make a damaged KEY absent; SHA256 names its damaged bytes",
    )
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    try:
        args.dir = _local_dir(args.dir)
        if args.restore_from:
            restore(args.dir, args.restore_from[0], args.restore_from[1])
            print(f"restored {args.restore_from[1]!r} from {args.restore_from[0]}")
            return 0
        if args.salvage:
            kept = salvage(args.dir, args.salvage)
            if args.json:
                print(json.dumps(asdict(kept)))
            else:
                print(
                    f"salvaged {kept.key!r}: kept {kept.lines} valid lines; the key is now at "
                    f"version {kept.version}, epoch {kept.epoch} (above everything the damaged "
                    f"part held); the damaged log is kept at {kept.aside}"
                )
            return 0
        if args.reset:
            aside = reset(args.dir, args.reset[0], args.reset[1])
            print(f"reset {args.reset[0]!r}; its damaged bytes are kept at {aside}")
            return 0
        report = check(args.dir, quarantine=args.quarantine)
    except FencedStateError as exc:
        from .cli.errors import report as report_error

        return report_error(exc, as_json=args.json, prog="fencedstate check")
    except OSError as exc:
        print(f"fencedstate check: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=2) if args.json else render(report))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())

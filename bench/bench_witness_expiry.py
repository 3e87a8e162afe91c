"""The witness expiry's cost to a launch, and the archive's cost to a lookup
(sandbox/audit/expiry.py, sandbox/audit/witness.py).

1. Launches with a backlog: a private key directory holds N witness files of audit
   directories that do not exist (what a test suite or throwaway --audit-dir runs leave
   behind), so every launch's expiry pass moves EXPIRE_BATCH of them until the backlog
   is gone.  `landgate run -- /bin/true` under LANDGATE_DEBUG_TIMING=1: "launch" is every
   phase before the agent runs (startup .. supervisor), "after" the run and close phases
   (where the expiry now overlaps the agent and close() waits for it).  Medians of the
   launches while the backlog lasts.  To compare with a tree where the expiry ran while
   the launch prepared, run this file with PYTHONPATH set to a copy of that tree's
   package (the same launches, the same backlog).
2. The key directory's walk (sandbox.supervise.fswalk, what every launch pays per entry)
   with the N files, and after they are moved.
3. A lookup that misses a witness file (a fresh audit directory's first session): the
   archive as one file of M records (an earlier version's expired.jsonl, which
   lookups still read until a pass splits it), and split into its 16 shards.

4. A session's start (AuditWriter.start_session: what the launch waits for before the
   agent is released) with N witness files and no pass in the last hour, as during a
   backlog: the writer asks `due` there.  The witnesses' directories exist, so a pass
   moves nothing and every round starts in the same state (the stamp is removed).

    .venv/bin/python bench/bench_witness_expiry.py [N] [M]
    .venv/bin/python bench/bench_witness_expiry.py --starts [N ...]   (4 alone)
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(ROOT))

from sandbox.audit import expiry
from sandbox.audit.expiry import EXPIRE_BATCH, expire_witnesses
from sandbox.audit.paths import WITNESS_DIR, load_key, prepare_trail_dirs
from sandbox.audit.witness import (
    EXPIRED_NAME,
    Witness,
    expired_record,
    load_witness,
    publish_witness,
    witness_file,
)

BEFORE_RUN = ("startup", "imports", "policy", "probe", "plan", "trail", "network", "fork", "tables")
BEFORE_RUN += ("spawn", "supervisor")
_TIMING = re.compile(r"landgate: timing \(ms\): (.*)")


def _launch(env: dict[str, str], cwd: Path) -> dict[str, float]:
    """The phases of one `landgate run -- /bin/true` (ms), and its wall time."""
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--", "/bin/true"],
        env={**env, "LANDGATE_DEBUG_TIMING": "1"},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    wall = (time.perf_counter() - t) * 1e3
    m = _TIMING.search(p.stderr)
    if m is None:
        raise SystemExit(f"no timing line in: {p.stderr!r}")
    phases = {k: float(v) for k, v in (kv.rsplit(" ", 1) for kv in m.group(1).split(", "))}
    return {**phases, "wall": wall}


def _walk_ms(kdir: Path, rounds: int = 30) -> tuple[int, float]:
    """(entries, median ms) of the launch's device+inode walk of the key directory alone
    (sandbox.supervise.fswalk, as the plan runs it for the key directory's deny)."""
    from sandbox.supervise.fswalk import existing_keys

    samples = []
    n = 0
    for _ in range(rounds):
        t = time.perf_counter()
        n = len(existing_keys([f"{kdir}/**"]))
        samples.append(time.perf_counter() - t)
    return n, statistics.median(samples) * 1e3


def _populate(root: Path, n: int) -> tuple[dict[str, str], Path]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[var] = str(root / var.lower())
    kdir = root / "xdg_config_home" / "landgate"
    prepare_trail_dirs(root / "xdg_state_home" / "landgate" / "audit", kdir)
    key = load_key(kdir, create=False)
    for i in range(n):
        d = root / "gone" / f"audit-{i}"
        w = Witness(str(d), 2049, 1000 + i, f"{i:032x}", 10, "ab" * 32, "cd" * 32)
        publish_witness(key, kdir, d, w)
    (root / "ws").mkdir()
    return env, kdir


def _files(kdir: Path) -> int:
    return len(list((kdir / WITNESS_DIR).glob("dir-*.json")))


def launches_with_a_backlog(root: Path, n: int) -> None:
    env, kdir = _populate(root / "backlog", n)
    _launch(env, root / "backlog/ws")  # warm-up: the caches (it moves a batch too)
    rows: list[dict[str, float]] = []
    while _files(kdir) > EXPIRE_BATCH:  # every launch measured has a full batch to move
        rows.append(_launch(env, root / "backlog/ws"))
    print(f"{len(rows)} launches, each with a backlog (>{EXPIRE_BATCH} of {n} witnesses gone):")
    launch = [sum(r[k] for k in BEFORE_RUN) for r in rows]
    after = [r["run"] + r["close"] for r in rows]
    for name, vals in (
        ("launch (startup..supervisor)", launch),
        ("policy (audit dirs prepared)", [r["policy"] for r in rows]),
        ("trail (opened)", [r["trail"] for r in rows]),
        ("run + close", after),
        ("wall", [r["wall"] for r in rows]),
    ):
        print(f"  {name:30} median {statistics.median(vals):6.1f} ms")


def walk(root: Path, n: int) -> None:
    _env, kdir = _populate(root / "walk", n)
    entries, ms = _walk_ms(kdir)
    t = time.perf_counter()
    result = expire_witnesses(kdir)
    pass_ms = (time.perf_counter() - t) * 1e3
    after_entries, after_ms = _walk_ms(kdir)
    print(f"key directory walk: {entries} entries {ms:.2f} ms; after one pass that moved")
    print(f"  {result.moved} ({pass_ms:.0f} ms): {after_entries} entries {after_ms:.2f} ms")


def lookup(root: Path, m: int, rounds: int = 200) -> None:
    """A fresh directory's lookup against an archive of m records, one file then shards."""
    kdir = root / "lookup" / "keys"
    prepare_trail_dirs(root / "lookup" / "audit", kdir)
    key = load_key(kdir, create=False)
    wdir = kdir / WITNESS_DIR
    records = []
    for i in range(m):
        d = root / "gone" / f"audit-{i}"
        w = Witness(str(d), 2049, 1000 + i, f"{i:032x}", 10, "ab" * 32, "cd" * 32)
        publish_witness(key, kdir, d, w)
        path = witness_file(kdir, d)
        records.append(expired_record(path.name, path.read_bytes()))
        path.unlink()
    (wdir / EXPIRED_NAME).write_bytes(b"".join(records))
    size = (wdir / EXPIRED_NAME).stat().st_size
    fresh = root / "lookup" / "fresh"

    def median_ms() -> float:
        samples = []
        for _ in range(rounds):
            t = time.perf_counter()
            found = load_witness(key, kdir, fresh)
            samples.append(time.perf_counter() - t)
            assert found is None
        return statistics.median(samples) * 1e3

    one = median_ms()
    moved = expiry.split_old_archive(kdir)
    shards = sorted(p.stat().st_size for p in wdir.glob("expired-*.jsonl"))
    split = median_ms()
    print(f"lookup missing a witness file, archive of {m} records ({size / 1e6:.2f} MB):")
    print(f"  as one file        median {one:.3f} ms")
    print(
        f"  in {len(shards)} shards       median {split:.3f} ms "
        f"({moved} records moved; shard {shards[0]}..{shards[-1]} bytes)"
    )


def session_starts(root: Path, n: int, rounds: int = 40) -> tuple[float, float]:
    """(median start_session ms, median due() ms) with n witness files, no recent pass."""
    from sandbox.audit.writer import AuditWriter

    base = root / f"starts-{n}"
    kdir, audit = base / "keys", base / "audit"
    prepare_trail_dirs(audit, kdir)
    key = load_key(kdir, create=False)
    for i in range(n):
        d = base / "live" / f"audit-{i}"
        d.mkdir(parents=True)
        w = Witness(str(d), 2049, 1000 + i, f"{i:032x}", 10, "ab" * 32, "cd" * 32)
        publish_witness(key, kdir, d, w)
    stamp = kdir / WITNESS_DIR / expiry.STAMP_NAME
    starts, dues = [], []
    for _ in range(rounds):
        stamp.unlink(missing_ok=True)
        t = time.perf_counter()
        expiry.due(kdir)
        dues.append(time.perf_counter() - t)
        w = AuditWriter(audit, key_directory=kdir)
        t = time.perf_counter()
        w.start_session({"mode": "enforce", "argv": ["agent"], "cwd": "/ws"})
        starts.append(time.perf_counter() - t)
        w.end_session(0)
        w.close()
    return statistics.median(starts) * 1e3, statistics.median(dues) * 1e3


def main() -> None:
    if sys.argv[1:2] == ["--starts"]:
        sizes = [int(a) for a in sys.argv[2:]] or [0, 1000, 5000]
        print(f"sandbox from {Path(expiry.__file__).parents[1]}")
        root = Path(tempfile.mkdtemp(prefix="lg-witness-bench-"))
        try:
            for n in sizes:
                start, due = session_starts(root, n)
                print(f"{n:6d} witness files: start_session {start:6.2f} ms, due {due:6.3f} ms")
        finally:
            shutil.rmtree(root)
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4300
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    print(f"sandbox from {Path(expiry.__file__).parents[1]}")
    root = Path(tempfile.mkdtemp(prefix="lg-witness-bench-"))
    try:
        launches_with_a_backlog(root, n)
        walk(root, n)
        if hasattr(expiry, "split_old_archive"):
            lookup(root, m)
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

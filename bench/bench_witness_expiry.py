"""Launch time with thousands of witness files in the key directory, before and after the
expiry moved them into expired.jsonl (sandbox/audit/expiry.py).

A private key directory gets N witness files of audit directories that do not exist (what
a test suite or throwaway --audit-dir runs leave behind).  "walked": the expiry's stamp is
fresh, so the launch's walk of the key directory sees all N files (the cost before the
expiry existed, plus one listdir and one stat).  "expired": after one expiry pass.  And
what a pass costs.  Interleaved medians of `landgate run -- /bin/true`, and of the walk
alone (on a shared, busy machine the launch medians are mostly noise; the walk is what
the witness files cost).

    .venv/bin/python bench/bench_witness_expiry.py [N] [rounds]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.audit.expiry import EXPIRE_BATCH, STAMP_NAME, expire_witnesses
from sandbox.audit.paths import load_key, prepare_trail_dirs
from sandbox.audit.witness import Witness, publish_witness


def _launch(env: dict[str, str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(
        [str(ROOT / ".venv/bin/landgate"), "run", "--", "/bin/true"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t


def _walk_ms(kdir: Path, rounds: int = 30) -> tuple[int, float]:
    """(entries, median ms) of the launch's device+inode walk of the key directory alone
    (sandbox.supervise.tables, as the plan runs it for the key directory's deny)."""
    from sandbox.supervise.tables import _existing_keys

    samples = []
    n = 0
    for _ in range(rounds):
        t = time.perf_counter()
        n = len(_existing_keys([f"{kdir}/**"]))
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
    ws = root / "ws"
    ws.mkdir()
    return env, kdir


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4300
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    root = Path(tempfile.mkdtemp(prefix="lg-witness-bench-"))
    try:
        walked_env, walked_kdir = _populate(root / "walked", n)
        expired_env, expired_kdir = _populate(root / "expired", n)
        stamp = walked_kdir / "witness" / STAMP_NAME
        stamp.touch()  # fresh: no expiry pass for an hour, the walk sees all N
        t = time.perf_counter()
        first = expire_witnesses(expired_kdir, batch=EXPIRE_BATCH)  # one launch's pass
        batch_ms = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        result = expire_witnesses(expired_kdir)  # the rest at once
        pass_ms = (time.perf_counter() - t) * 1e3
        samples: dict[str, list[float]] = {"walked": [], "expired": []}
        cases = {
            "walked": (walked_env, root / "walked/ws"),
            "expired": (expired_env, root / "expired/ws"),
        }
        for env, cwd in cases.values():
            _launch(env, cwd)  # warm-up (and the caches)
        for _ in range(rounds):
            os.utime(stamp)  # keep it fresh whatever the clock did
            for name, (env, cwd) in cases.items():
                samples[name].append(_launch(env, cwd))
        files = lambda k: len(list((k / "witness").glob("dir-*.json")))  # noqa: E731
        print(f"witnesses: {n}; one launch's pass moved {first.moved} in {batch_ms:.0f} ms")
        print(f"the remaining {result.moved} moved in one pass in {pass_ms:.0f} ms")
        for name, kdir in (("walked", walked_kdir), ("expired", expired_kdir)):
            med = statistics.median(samples[name]) * 1e3
            entries, walk = _walk_ms(kdir)
            print(
                f"{name:8} witness files {files(kdir):5}  launch median {med:6.1f} ms  "
                f"key directory walk {entries:5} entries {walk:5.2f} ms"
            )
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

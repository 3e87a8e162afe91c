"""The loader's in-process caches are shared by threads: sandbox.run is called from thread
pools (vm-test caught `KeyError` out of sandbox.run from eight threads at once: two threads
evicting the same oldest entry of the loaded-policy cache)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from sandbox.policy import load_policy, loader, yamlread

POLICY = "version: 1\nactions:\n  - action: shell_exec\n    defaultEffect: allow\n"


class _SlowPop(dict):
    def pop(self, *args):
        time.sleep(0.002)
        return super().pop(*args)


def test_loads_from_many_threads_with_caches_full_never_fail(tmp_path: Path, monkeypatch) -> None:
    # Caches of one entry and a distinct key per load: every load evicts, from 8 threads at
    # once.  The eviction's pop sleeps, so that two unserialised evictions overlap: both
    # chose the same oldest key, and the second pop raised KeyError.
    monkeypatch.setattr(loader, "_LOADED_MAX", 1)
    monkeypatch.setattr(yamlread, "_COMPOSED_MAX", 1)
    monkeypatch.setattr(loader, "_LOADED", _SlowPop())
    monkeypatch.setattr(yamlread, "_COMPOSED", _SlowPop())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LANDGATE_POLICY_CACHE", "0")
    dirs = []
    for i in range(8):
        d = tmp_path / f"w{i}"
        d.mkdir()
        (d / "p.yaml").write_text(POLICY + f"# {i}\n")  # distinct texts: distinct yaml keys
        dirs.append(d)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(dirs))

    def work(d: Path) -> None:
        try:
            barrier.wait()
            for _ in range(10):
                load_policy(d / "p.yaml", cwd=d, home=tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(d,)) for d in dirs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[:3]


def test_one_thread_reuses_the_loaded_policy(tmp_path: Path, monkeypatch) -> None:
    """The twin: the cache still serves a repeated load (same object back)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LANDGATE_POLICY_CACHE", "0")
    (tmp_path / "p.yaml").write_text(POLICY)
    first = load_policy(tmp_path / "p.yaml", cwd=tmp_path, home=tmp_path)
    assert load_policy(tmp_path / "p.yaml", cwd=tmp_path, home=tmp_path) is first

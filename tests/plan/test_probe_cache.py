"""The host probe's per-boot cache (sandbox.host.probecache, issue 19): a hit gives the very
facts a fresh probe gives, without probing the kernel's features again; an entry that is
not authentic, not this entry's or not private is never used; a cached "no" for a
namespace is asked again.

Probes are observed by counting calls of probe.kernel_facts / probe.namespace_facts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.host import probe, probecache
from sandbox.policy import diskcache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("LANDGATE_PROBE_CACHE", raising=False)
    yield tmp_path / "cache" / "landgate" / "host"


class Probes:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kernel = 0
        self.namespaces = 0
        real_k, real_n = probe.kernel_facts, probe.namespace_facts

        def kernel() -> dict[str, object]:
            self.kernel += 1
            return real_k()

        def namespaces(is_root: bool) -> dict[str, bool]:
            self.namespaces += 1
            return real_n(is_root)

        monkeypatch.setattr(probe, "kernel_facts", kernel)
        monkeypatch.setattr(probe, "namespace_facts", namespaces)


def _entry(cache: Path) -> Path:
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    return entry


def test_a_hit_is_the_fresh_probe_without_probing(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = probe.probe_host_uncached()
    probes = Probes(monkeypatch)
    first = probecache.cached_probe()
    assert (probes.kernel, probes.namespaces) == (1, 1)
    assert first == fresh
    entry = _entry(cache)
    assert entry.stat().st_mode & 0o777 == 0o600
    assert cache.stat().st_mode & 0o777 == 0o700
    second = probecache.cached_probe()
    assert second == fresh
    assert probes.kernel == 1  # the kernel's features: from the entry
    # every namespace "yes" was taken from the entry too; a "no" is asked again
    assert probes.namespaces == (1 if all(getattr(fresh, k) for k in probe.NAMESPACE_FACTS) else 2)


def test_the_cache_off_writes_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANDGATE_PROBE_CACHE", "0")
    probes = Probes(monkeypatch)
    probecache.cached_probe()
    probecache.cached_probe()
    assert probes.kernel == 2
    assert not cache.exists()


def _rewrite(entry: Path, change: dict[str, object], *, sign: bool) -> None:
    """Change facts in the entry; `sign`: with a valid tag (as landgate would write it)."""
    blob = entry.read_bytes()
    head = len(probecache.MAGIC) + diskcache.TAG_BYTES
    data = json.loads(blob[head:])
    for k, v in change.items():
        section = "namespaces" if k in probe.NAMESPACE_FACTS else "kernel"
        data[section][k] = v
    payload = json.dumps(data, sort_keys=True).encode()
    tag = blob[len(probecache.MAGIC) : head]
    if sign:
        key = probecache._mac_key()
        assert key is not None
        tag = diskcache.tag_entry(probecache.MAGIC, key, payload)[len(probecache.MAGIC) : head]
    entry.write_bytes(probecache.MAGIC + tag + payload)


def test_a_tampered_entry_is_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: something that can write ~/.cache (the agent, when a policy grants it) edits
    the entry to say the kernel has no Landlock and no seccomp user notification: the
    next session would plan without them.  The tag no longer matches: the entry is
    ignored and the host probed.  With the tag check off this test fails."""
    fresh = probe.probe_host_uncached()
    probecache.cached_probe()
    entry = _entry(cache)
    _rewrite(entry, {"landlock_abi": 0, "seccomp_notify": False}, sign=False)
    probes = Probes(monkeypatch)
    got = probecache.cached_probe()
    assert probes.kernel == 1
    assert got.landlock_abi == fresh.landlock_abi and got.seccomp_notify == fresh.seccomp_notify
    # the twin: the same change under a valid tag is taken as written (the tag is the check)
    _rewrite(entry, {"landlock_abi": 0}, sign=True)
    probes.kernel = 0
    assert probecache.cached_probe().landlock_abi == 0 and probes.kernel == 0


def test_an_entry_moved_under_another_name_is_ignored(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authentic entry of another boot, kernel or user put where this one is looked
    for: its own name is inside the tagged bytes."""
    probecache.cached_probe()
    entry = _entry(cache)
    _rewrite(entry, {"landlock_abi": 0}, sign=True)  # marks the entry: 0 only if it is used
    name = entry.name
    probes = Probes(monkeypatch)
    assert probecache.cached_probe().landlock_abi == 0  # the twin: under its own name, used
    entry.rename(cache / ("0" * 64))
    monkeypatch.setattr(probecache, "_entry_name", lambda: "0" * 64)
    got = probecache.cached_probe()
    assert probes.kernel == 1  # a miss: probed (and a fresh entry written over the moved one)
    assert got.landlock_abi == probe.probe_host_uncached().landlock_abi
    assert name != "0" * 64


def test_an_entry_open_to_others_is_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probecache.cached_probe()
    entry = _entry(cache)
    probes = Probes(monkeypatch)
    os.chmod(entry, 0o644)
    probecache.cached_probe()
    assert probes.kernel == 1
    os.chmod(entry, 0o600)
    os.chmod(cache, 0o755)
    probecache.cached_probe()
    assert probes.kernel == 2
    os.chmod(cache, 0o700)
    probecache.cached_probe()
    assert probes.kernel == 2  # private again: a hit


def test_a_cached_no_for_a_namespace_is_asked_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "no" may have become a "yes" since (a sysctl, an LSM): never taken from the
    cache, which would run the session on a lower rung than the host gives."""
    fresh = probe.probe_host_uncached()
    probecache.cached_probe()
    _rewrite(_entry(cache), {"user_ns": False, "pid_ns": False}, sign=True)
    probes = Probes(monkeypatch)
    got = probecache.cached_probe()
    assert probes.namespaces == 1 and probes.kernel == 0
    assert (got.user_ns, got.pid_ns) == (fresh.user_ns, fresh.pid_ns)

"""The host probe's per-boot cache: a repeated `landgate run` skips the kernel probes.

Probing costs ~6 ms, nearly all of it short-lived children (a fork of the Python
process for each namespace kind and for SYNC_WAKE_UP).  What a boot cannot change
(probe.KERNEL_FACTS: Landlock's ABI, seccomp's actions and flags, pidfd and kcmp) is
therefore kept in $XDG_CACHE_HOME/landgate/host/ (~/.cache by default), in an entry
named by the boot id, the kernel release, the uid/gid and landgate's probing code.
Another boot, kernel, user or landgate install never finds it.

What may change within a boot is not taken from the cache as a "no":
- the namespace kinds this user may unshare (a sysctl, an LSM): a cached "yes" is used
  (should it have become "no", the launcher's clone3 fails and the session is refused
  with that error: exit 125, never a run with fewer layers); any cached "no" is probed
  again, so a host that gained a namespace is seen at once;
- the identity, the cgroup layout and the host audit's state are asked every time
  (probe.assemble), and the network rung, the tun device and nft are sandbox.host.network's
  own, never cached.

An entry is trusted only as the policy cache's are (sandbox.policy.diskcache): a
private directory and file of the user's, an HMAC-SHA256 tag under the key in
landgate's key directory (which no sandbox can read or write), and the entry's own
name inside it.  A tampered, foreign, stale or unreadable entry is a miss: the host
is probed as if there were none.  LANDGATE_PROBE_CACHE=0 turns it off.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from sandbox._version import __version__
from sandbox.digest import sha256, token_hex
from sandbox.host import probe
from sandbox.host.probe import HostCapabilities

MAGIC = b"landgate-host-probe 1\n"
MAX_ENTRY = 1 << 16
_CODE = (Path(probe.__file__), Path(__file__))


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/landgate/host, else ~/.cache/landgate/host."""
    env = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(env) if env.startswith("/") else Path.home() / ".cache"
    return base / "landgate" / "host"


def enabled() -> bool:
    return os.environ.get("LANDGATE_PROBE_CACHE", "1") != "0"


def cached_probe() -> HostCapabilities:
    """probe.probe_host_uncached(), with KERNEL_FACTS (and namespace "yes") from the cache."""
    is_root = os.geteuid() == 0
    name = _entry_name() if enabled() else None
    mac_key = _mac_key() if name is not None else None
    if name is None or mac_key is None:
        return probe.probe_host_uncached()
    hit = _read(name, mac_key)
    if hit is not None:
        kernel, namespaces = hit
        if not all(namespaces.values()):
            # A "no" may have become a "yes" (and a wrong "no" would lower the rung).
            namespaces = probe.namespace_facts(is_root)
        return probe.assemble(kernel, namespaces)
    kernel, namespaces = probe.kernel_facts(), probe.namespace_facts(is_root)
    _write(name, mac_key, kernel, namespaces)
    return probe.assemble(kernel, namespaces)


def _entry_name() -> str | None:
    """What the entry depends on, hashed; None when the boot id cannot be read (no cache)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as fh:
            boot = fh.read().strip().decode("ascii", "replace")
    except OSError:
        return None
    if not boot:
        return None
    code = []
    for path in _CODE:
        try:
            st = path.stat()
        except OSError:
            return None
        code.append((path.name, st.st_size, st.st_mtime_ns))
    facts = {
        "format": MAGIC.decode().strip(),
        "version": __version__,
        "code": code,
        "boot": boot,
        "kernel": os.uname().release,
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
    }
    return sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _mac_key() -> bytes | None:
    """The persistent caches' HMAC key, kept in landgate's key directory (one key for the
    policy cache and this one: both guard against the same writer of ~/.cache)."""
    from sandbox.policy.diskcache import _mac_key as policy_cache_key

    return policy_cache_key()


def _private(st: os.stat_result, kind: int) -> bool:
    """Ours, of the expected type, not open to the group or others (the policy cache's
    test, shared: one definition of what a private cache file is)."""
    from sandbox.policy.diskcache import _private as private

    return private(st, kind)


def _open_dir(create: bool) -> int | None:
    from sandbox.policy.diskcache import open_private_dir

    return open_private_dir(cache_dir(), create)


def _read(name: str, mac_key: bytes) -> tuple[dict[str, object], dict[str, bool]] | None:
    dfd = _open_dir(create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        if not _private(os.fstat(fd), stat.S_IFREG):
            return None
        blob = os.read(fd, MAX_ENTRY + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    from sandbox.policy.diskcache import entry_payload

    payload = entry_payload(MAGIC, mac_key, blob, MAX_ENTRY)
    if payload is None:
        return None  # not written by this user's landgate: probe afresh
    try:
        entry = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("name") != name:
        return None  # an authentic entry of another boot/user moved here
    kernel, namespaces = entry.get("kernel"), entry.get("namespaces")
    if not isinstance(kernel, dict) or not isinstance(namespaces, dict):
        return None
    if set(kernel) != set(probe.KERNEL_FACTS) or set(namespaces) != set(probe.NAMESPACE_FACTS):
        return None
    if not all(isinstance(v, bool) for v in namespaces.values()):
        return None
    for k, v in kernel.items():
        want = {"landlock_abi": int, "landlock_error": str}.get(k, bool)
        if type(v) is not want:
            return None
    return kernel, namespaces


def _write(
    name: str, mac_key: bytes, kernel: dict[str, object], namespaces: dict[str, bool]
) -> None:
    """Store the entry atomically; any failure leaves none (the next run probes)."""
    payload = json.dumps(
        {"name": name, "kernel": kernel, "namespaces": namespaces}, sort_keys=True
    ).encode()
    from sandbox.policy.diskcache import tag_entry

    blob = tag_entry(MAGIC, mac_key, payload)
    dfd = _open_dir(create=True)
    if dfd is None:
        return
    tmp = f".{name}.{os.getpid()}.{token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            if os.write(fd, blob) != len(blob):
                raise OSError("short write")
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        from sandbox.policy.diskcache import _trim  # the policy cache's: oldest entries go

        _trim(dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)

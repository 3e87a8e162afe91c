"""The persistent policy cache: a repeated `landgate run` / `landgate hook` skips loading.

Loading a policy (PyYAML, the parser, validation, `extends`, `$PATH` expansion) costs
more than everything else `landgate hook` does, mostly in imports.  The validated
policy is therefore kept on disk, in $XDG_CACHE_HOME/landgate/policy/ (~/.cache by
default), and reused when nothing it was built from has changed:

- the key: sha256 over the policy file's exact bytes and every input of the loader
  that is not a file (the name and path given, the working directory and home as the
  kernel resolves them now, the audit directory, $HOME, $PATH, $XDG_STATE_HOME,
  $XDG_CONFIG_HOME, the uid), landgate's version and a fingerprint of the policy
  package's code (size and mtime of each module: an edited checkout misses);
- inside the entry, the notes of every file-system lookup the load made
  (sandbox.policy.fsdeps: each file it extends with its sha256, how each `extends`
  name resolved, each `workspace:` resolution, the `$PATH` expansion).  A hit asks each
  of them again; one different answer is a miss.

An entry is never trusted for being there.  The directory must be the user's own and
0700, the file a regular file of the user's, not group/world accessible; its bytes
carry an HMAC-SHA256 under a key kept in landgate's key directory ($XDG_CONFIG_HOME/
landgate, which no sandbox may read or write: baseline.protected_entries).  So an
agent that can write ~/.cache cannot plant a weaker policy for the next session:
the tag is checked before the bytes are unpickled, and the key inside must match.
Anything wrong (missing, foreign, corrupt, stale, unreadable, an unwritable cache
directory) is a miss: the policy is loaded as if there were no cache, and a fresh
entry written when possible.  The cache never changes a decision, only its cost.

An entry also carries the policy's compiled glob programs (sandbox.policy.compiled), by
their exact inputs: a hit compiles none of them (tests/policy/test_diskcache_programs.py).

LANDGATE_POLICY_CACHE=0 turns it off (the benchmark measures cold loads with it).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

from sandbox._version import __version__
from sandbox.digest import compare_digest, hmac_sha256, sha256, token_hex
from sandbox.keyfile import create_key_file
from sandbox.policy import fsdeps, globs
from sandbox.policy.baseline import key_dir
from sandbox.policy.keys import MAX_BYTES
from sandbox.policy.model import Policy
from sandbox.record import replace

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    # The C unpickler that pickle.loads is, without importing pickle.py itself (~0.8 ms
    # of every cached launch: its module body alone runs a regex over its names).  The
    # pure-Python pickle is imported only to write an entry (a cold load).
    from _pickle import loads as _unpickle
except ImportError:  # an interpreter without the accelerator
    from pickle import loads as _unpickle

MAGIC = b"landgate-policy-cache 1\n"
KEY_NAME = "policy-cache.key"
KEY_BYTES = 32
TAG_BYTES = 32  # HMAC-SHA256
MAX_ENTRY = 8 << 20  # a policy pickles to tens of KiB; anything this big is not ours
MAX_ENTRIES = 256  # oldest entries are dropped beyond this
_POLICY_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/landgate/policy, else ~/.cache/landgate/policy."""
    env = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(env) if env.startswith("/") else Path.home() / ".cache"
    return base / "landgate" / "policy"


def enabled() -> bool:
    return os.environ.get("LANDGATE_POLICY_CACHE", "1") != "0"


def load_policy_cached(
    path: str | os.PathLike[str], *, cwd: Path, audit_dir: Path | None = None, memo: bool = False
) -> Policy:
    """`load_policy(path, cwd=cwd, audit_dir=audit_dir)`, from the cache when it holds.

    `memo`: also keep the entry in this process's memory (see _MEMO), for a process that
    loads the same policy again and again (the hook server)."""
    if not enabled():
        return _load(path, cwd, audit_dir)
    key = _entry_key(path, cwd, audit_dir)
    if key is None:
        return _load(path, cwd, audit_dir)
    with _MEMO_LOCK:
        held = _MEMO.get(key) if memo else None
    if held is not None and fsdeps.still_true(held[1], MAX_BYTES):
        return held[0]
    mac_key = _mac_key()
    if mac_key is None:
        return _load(path, cwd, audit_dir)
    hit = _read_entry(key, mac_key)
    if hit is not None:
        if memo:
            _remember(key, *hit)
        return hit[0]
    with fsdeps.recording() as notes:
        policy = _load(path, cwd, audit_dir)
    _write_entry(key, mac_key, notes, policy)
    if memo:
        _remember(key, policy, notes)
    return policy


# Entries this process has read or written, by key (with memo=True): a long-lived
# process (the hook server) skips reading, checking and
# unpickling the file, and keeps one Policy object, whose compiled tables are built
# once (policy.cache).  The same questions are asked again on every hit
# (fsdeps.still_true), as for an entry read from disk; the key covers the file's bytes.
_MEMO: dict[str, tuple[Policy, list[fsdeps.Note]]] = {}
_MEMO_MAX = 16


_MEMO_LOCK = threading.Lock()


def _remember(key: str, policy: Policy, notes: list[fsdeps.Note]) -> None:
    with _MEMO_LOCK:
        _MEMO.pop(key, None)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = (policy, list(notes))


def _load(path: str | os.PathLike[str], cwd: Path, audit_dir: Path | None) -> Policy:
    from sandbox.policy.loader import load_policy

    return load_policy(path, cwd=cwd, audit_dir=audit_dir, memo=False)


def _entry_key(path: str | os.PathLike[str], cwd: Path, audit_dir: Path | None) -> str | None:
    """The entry's name; None when the policy file cannot be read here (the loader then
    says why, in its own words)."""
    p = Path(path)
    if not p.is_absolute():
        p = Path(cwd) / p
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_BYTES:
        return None
    facts = {
        "format": MAGIC.decode().strip(),
        "version": __version__,
        "python": sys.version,
        "code": _code_fingerprint(),
        "uid": os.geteuid(),
        "sha256": sha256(data).hexdigest(),
        "file": os.fspath(path),
        "abspath": os.path.abspath(p),
        "cwd": os.path.realpath(cwd),
        "home": os.path.realpath(Path.home()),
        "audit_dir": None if audit_dir is None else os.fspath(audit_dir),
        "env": {
            k: os.environ.get(k)
            for k in ("HOME", "PATH", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
        },
    }
    blob = json.dumps(facts, sort_keys=True).encode("utf-8", "surrogateescape")
    return sha256(blob).hexdigest()


def _code_fingerprint() -> list[tuple[str, int, int]]:
    """The policy package's modules by (name, size, mtime): the pickled classes and the
    loader's meaning live there, so an edited or upgraded install never reuses an entry."""
    out: list[tuple[str, int, int]] = []
    with os.scandir(_POLICY_DIR) as it:
        for e in it:
            if e.name.endswith(".py"):
                st = e.stat()
                out.append((e.name, st.st_size, st.st_mtime_ns))
    out.sort()
    return out


def _private(st: os.stat_result, kind: int) -> bool:
    """Owned by us, of the expected type, and not open to the group or others."""
    return (
        stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.geteuid() and (st.st_mode & 0o077) == 0
    )


def _mac_key() -> bytes | None:
    """The cache's HMAC key (created on first use), or None when it cannot be had safely."""
    kdir = key_dir()
    path = kdir / KEY_NAME
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if not _create_key(kdir, path):
                return None
            continue
        except OSError:
            return None
        try:
            if not _private(os.fstat(fd), stat.S_IFREG):
                return None  # someone else's key, or a readable one: not a secret
            key = os.read(fd, KEY_BYTES + 1)
        except OSError:
            return None
        finally:
            os.close(fd)
        return key if len(key) == KEY_BYTES else None
    return None


def _create_key(kdir: Path, path: Path) -> bool:
    try:
        create_key_file(kdir, path, KEY_BYTES)
    except OSError:
        return False  # no key: every load is a miss (the cache never decides)
    return True


def _open_dir(create: bool) -> int | None:
    return open_private_dir(cache_dir(), create)


def open_private_dir(d: Path, create: bool) -> int | None:
    """Directory d, opened (no symlink), if it is ours and private (also the host probe
    cache's: sandbox.host.probecache)."""
    if create:
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        ok = _private(os.fstat(fd), stat.S_IFDIR)
    except OSError:
        ok = False
    if not ok:
        os.close(fd)
        return None
    return fd


def tag_entry(magic: bytes, mac_key: bytes, payload: bytes) -> bytes:
    """A cache entry as stored: `magic`, HMAC-SHA256 under `mac_key` of magic + payload,
    the payload.  The one definition for the policy cache and the host probe cache
    (sandbox.host.probecache): the magic is under the tag, so an entry of one cache never
    authenticates as the other's."""
    return magic + _mac(magic, mac_key, payload) + payload


def _mac(magic: bytes, mac_key: bytes, payload: bytes) -> bytes:
    return hmac_sha256(mac_key, magic + payload)


def entry_payload(magic: bytes, mac_key: bytes, blob: bytes, max_entry: int) -> bytes | None:
    """The payload of `blob` if tag_entry made it with this magic and key and it is at
    most `max_entry` bytes; None for anything else (a miss, never an error)."""
    head = len(magic) + TAG_BYTES
    if len(blob) <= head or len(blob) > max_entry or not blob.startswith(magic):
        return None
    payload = blob[head:]
    if not compare_digest(blob[len(magic) : head], _mac(magic, mac_key, payload)):
        return None
    return payload


def _read_entry(key: str, mac_key: bytes) -> tuple[Policy, list[fsdeps.Note]] | None:
    dfd = _open_dir(create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError:
        os.close(dfd)
        return None
    os.close(dfd)
    try:
        st = os.fstat(fd)
        if not _private(st, stat.S_IFREG) or st.st_size > MAX_ENTRY:
            return None
        blob = b""
        while len(blob) <= MAX_ENTRY:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            blob += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    # The tag is checked BEFORE unpickling: pickle runs code, so only bytes this user's
    # landgate wrote (under a key no sandbox can read) are ever unpickled.
    payload = entry_payload(MAGIC, mac_key, blob, MAX_ENTRY)
    if payload is None:
        return None
    try:
        entry = _unpickle(payload)
    except Exception:  # noqa: BLE001 - a stale class layout: a miss, never an error
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None  # an authentic entry moved under another name: not this load's
    policy, notes = entry.get("policy"), entry.get("notes")
    if not isinstance(policy, Policy) or not isinstance(notes, list):
        return None
    if not fsdeps.still_true(notes, MAX_BYTES):
        return None
    programs = entry.get("programs")
    if isinstance(programs, dict) and programs:
        # The policy's compiled glob programs (sandbox.policy.compiled), by their inputs:
        # as authentic as the policy (same tag) and as fresh (the key holds the policy
        # package's code, globs.py's with it).  compile_policy looks each up by its exact
        # inputs; a key missing here is compiled afresh.
        policy.cache["programs"] = programs
        globs.seed(programs)  # the planner's and explain's matches of the same globs
    return policy, notes


def _programs(policy: Policy) -> dict[Any, tuple[int, ...]]:
    """The policy's glob programs, compiled now (the session compiles them next anyway:
    compile_policy keeps its tables in policy.cache).  None compiled (a broken install):
    an entry without them, and every load compiles its own."""
    from sandbox.policy.compiled import compile_policy

    try:
        return dict(compile_policy(policy).programs)
    except Exception:  # noqa: BLE001 - the cache never decides; the session's compile reports it
        return {}


def _write_entry(key: str, mac_key: bytes, notes: list[fsdeps.Note], policy: Policy) -> None:
    """Store the entry (atomically: a reader sees the old file or the whole new one).
    Any failure leaves no entry; the next run loads afresh."""
    import pickle

    programs = _programs(policy)
    try:
        # policy.cache (the compiled tables: C memory) is not part of the policy's value.
        stored = replace(policy, cache={})
        payload = pickle.dumps(
            {"key": key, "notes": notes, "policy": stored, "programs": programs},
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    except Exception:  # noqa: BLE001 - something unpicklable in a policy: not cached
        return
    blob = tag_entry(MAGIC, mac_key, payload)
    if len(blob) > MAX_ENTRY:
        return
    dfd = _open_dir(create=True)
    if dfd is None:
        return
    tmp = f".{key}.{os.getpid()}.{token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, key, src_dir_fd=dfd, dst_dir_fd=dfd)
        _trim(dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)


def _trim(dfd: int) -> None:
    """Keep at most MAX_ENTRIES entries (the least recently written go)."""
    names = [n for n in os.listdir(dfd) if not n.startswith(".")]
    if len(names) <= MAX_ENTRIES:
        return
    aged = []
    for n in names:
        try:
            aged.append((os.stat(n, dir_fd=dfd, follow_symlinks=False).st_mtime_ns, n))
        except OSError:
            continue
    aged.sort()
    for _mtime, n in aged[: len(aged) - MAX_ENTRIES]:
        try:
            os.unlink(n, dir_fd=dfd)
        except OSError:
            pass

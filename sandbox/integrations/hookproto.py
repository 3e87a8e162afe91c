"""The hook server's wire format and identity: standard library only, cheap to import
(the hook client runs it on every tool call before anything else: only modules written
in C, already loaded by the interpreter or nearly free; `socket` and `pathlib` cost
~2 ms and ~7 ms in a sandbox where every file opened is checked, so `_socket` and
os.path stand in for them).

Request:  MAGIC, len+facts, len+cwd, then the hook input's raw bytes to the end.
Reply:    MAGIC, b"A", exit code, len+stdout, stderr to the end   (the answer)
          MAGIC, b"D", the reason                               (declined: decide yourself)
Lengths are 4-byte little-endian.  A connection carries one request (the client
shuts its side down after writing it) and one reply.
"""

from __future__ import annotations

import _socket as socket  # the C module: `socket`'s Python layer is not needed here
import os
import sys
import zlib

MAGIC = b"landgate-hook 1\n"
MAX_REQUEST = (16 << 20) + (1 << 16)  # the hook's own input bound, plus facts and cwd
# What the hook's answer depends on besides its input and cwd: the loader's and the
# writer's environment (see sandbox.policy.diskcache's key), and the cache switch.
ENV_KEYS = (
    "HOME",
    "PATH",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "LANDGATE_POLICY_CACHE",
)
SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)  # Linux 6.5 (include/uapi/asm-generic/socket.h)


def facts(policy_arg: str | None, audit_dir: str | None) -> bytes:
    """The server's identity: a server answers only clients whose facts are its own."""
    lines = [
        f"uid={os.geteuid()}",
        f"python={sys.executable}",
        f"package={_package()}",
        f"policy={policy_arg!r}",
        f"audit={audit_dir!r}",
        *(f"env.{k}={os.environ.get(k)!r}" for k in ENV_KEYS),
    ]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def _package() -> str:
    """landgate's package directory (what sandbox.__file__ resolves to)."""
    return os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def socket_path(server_facts: bytes) -> str | None:
    """$XDG_RUNTIME_DIR/landgate/hook-CRC.sock, else $XDG_CACHE_HOME (~/.cache)/landgate/
    run/hook-CRC.sock; None when the path is too long for a socket.  The name only
    spreads setups apart: the server compares the facts themselves."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        directory = os.path.join(runtime, "landgate")
    else:
        cache = os.environ.get("XDG_CACHE_HOME", "")
        base = cache if cache.startswith("/") else os.path.join(_home(), ".cache")
        directory = os.path.join(base, "landgate", "run")
    path = os.path.join(directory, f"hook-{zlib.crc32(server_facts):08x}.sock")
    return path if len(os.fsencode(path)) < 108 else None  # sun_path's size


def _home() -> str:
    """Path.home()'s answer ($HOME, else the password database), without pathlib."""
    home = os.path.expanduser("~")
    if home == "~":
        raise RuntimeError("Could not determine home directory.")  # as Path.home() does
    return home


def _fdinfo_pid(pidfd: int) -> int:
    # utf-8: the codec the interpreter has loaded; "ascii" would import encodings.ascii
    # (~0.3 ms of each hook call, issue 19).  The text is ASCII.
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return -1


def peer_refusal(conn: socket.socket) -> str | None:
    """Why the process at the other end may not be trusted, or None: our uid, our mount
    namespace, not under no_new_privs (not sandboxed).  Both ends ask it: the server of
    its client, the client of its server (an agent in a sandbox that can write the
    socket's directory must not stand in for the server and answer "allow").

    Checked through the peer's pidfd; what was read is trusted only if the pidfd
    still names a live process afterwards (a pid whose process ended could have been
    reused)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    _pid, uid, _gid = (
        int.from_bytes(creds[0:4], "little"),
        int.from_bytes(creds[4:8], "little"),
        int.from_bytes(creds[8:12], "little"),
    )
    if uid != os.geteuid():
        return f"peer uid {uid} is not ours"
    try:
        pidfd = int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4), "little")
    except OSError as exc:
        return f"SO_PEERPIDFD: {exc.strerror}"  # kernel < 6.5: no race-free peer identity
    try:
        pid = _fdinfo_pid(pidfd)
        if pid <= 0:
            return "peer has exited"
        nnp = _no_new_privs(pid)
        mnt = os.stat(f"/proc/{pid}/ns/mnt").st_ino
        if _fdinfo_pid(pidfd) != pid:
            return "peer has exited"  # what we read may have been another process's
    except OSError as exc:
        return f"peer status: {exc.strerror}"
    finally:
        os.close(pidfd)
    if nnp != "0":
        return "peer runs under no_new_privs (sandboxed)"
    if mnt != os.stat("/proc/self/ns/mnt").st_ino:
        return "peer is in another mount namespace"
    return None


def session_peer_refusal(conn: socket.socket) -> str | None:
    """Why the listener at the other end of a connection from inside `landgate run` is
    not the session, or None.  The session runs outside the sandbox: outside its pid
    namespace (the kernel then names it pid 0 here), or, on a rung without one, as a
    process without no_new_privs, which every process of the sandbox has.  Read through
    the listener's pidfd, trusted only if that still names the same live process."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid = int.from_bytes(creds[0:4], "little", signed=True)
    if pid == 0:
        return None  # not in this sandbox's pid namespace: not a process of the sandbox
    try:
        pidfd = int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4), "little")
    except OSError as exc:
        return f"SO_PEERPIDFD: {exc.strerror}"
    try:
        if _fdinfo_pid(pidfd) != pid:
            return "listener has exited"
        nnp = _no_new_privs(pid)
        if _fdinfo_pid(pidfd) != pid:
            return "listener has exited"
    except OSError as exc:
        return f"listener status: {exc.strerror}"
    finally:
        os.close(pidfd)
    if nnp != "0":
        return f"the listener, pid {pid}, runs under no_new_privs (inside a sandbox)"
    return None


def _no_new_privs(pid: int) -> str | None:
    """The NoNewPrivs field of /proc/PID/status ("0" or "1"), None if absent.  The
    caller holds the pid's pidfd and checks afterwards that it still names pid."""
    # utf-8 (already loaded, see _fdinfo_pid); a non-UTF-8 command name is replaced, as
    # it was under ascii, and the NoNewPrivs line is ASCII either way.
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("NoNewPrivs:"):
                return line.split()[1]
    return None


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(4, "little") + data


def request(server_facts: bytes, cwd: str, raw: bytes) -> bytes:
    return MAGIC + _field(server_facts) + _field(os.fsencode(cwd)) + raw


def _take(data: bytes, at: int) -> tuple[bytes, int] | None:
    if len(data) < at + 4:
        return None
    n = int.from_bytes(data[at : at + 4], "little")
    if len(data) < at + 4 + n:
        return None
    return data[at + 4 : at + 4 + n], at + 4 + n


def parse_request(data: bytes) -> tuple[bytes, str, bytes] | None:
    """(facts, cwd, raw input), or None when malformed."""
    if not data.startswith(MAGIC):
        return None
    got = _take(data, len(MAGIC))
    if got is None:
        return None
    server_facts, at = got
    got = _take(data, at)
    if got is None:
        return None
    cwd, at = got
    text = os.fsdecode(cwd)
    if not text.startswith("/") or "\x00" in text:
        return None
    return server_facts, text, data[at:]


def reply(code: int, stdout: str, stderr: str) -> bytes:
    out = stdout.encode("utf-8", "surrogateescape")
    return (
        MAGIC
        + b"A"
        + code.to_bytes(4, "little", signed=True)
        + _field(out)
        + stderr.encode("utf-8", "surrogateescape")
    )


def decline(reason: str) -> bytes:
    return MAGIC + b"D" + reason.encode("utf-8", "replace")


def parse_reply(data: bytes) -> tuple[str, str, int] | str | None:
    """(stdout, stderr, exit code) for an answer, the reason (str) for a decline, None
    when malformed."""
    if not data.startswith(MAGIC) or len(data) <= len(MAGIC):
        return None
    kind, at = data[len(MAGIC) : len(MAGIC) + 1], len(MAGIC) + 1
    if kind == b"D":
        return data[at:].decode("utf-8", "replace")
    if kind != b"A" or len(data) < at + 4:
        return None
    code = int.from_bytes(data[at : at + 4], "little", signed=True)
    got = _take(data, at + 4)
    if got is None:
        return None
    out, at = got
    return (
        out.decode("utf-8", "surrogateescape"),
        data[at:].decode("utf-8", "surrogateescape"),
        code,
    )

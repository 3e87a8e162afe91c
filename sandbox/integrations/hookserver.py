"""The resident decision server behind `landgate hook claude-code` (one per user and setup).

Claude Code starts the hook command once per tool call.  A fresh interpreter that
imports the policy model, the evaluator and the audit writer, then reads the cached
policy, costs ~45 ms over Python's own start; this server pays that once and answers
each call in a few ms, so the hook command is only Python's start, a connect and a
reply (sandbox.integrations.hookclient).

What it answers is what `run_hook` answers in the hook's own process: the server
calls that same function with the same input, policy argument, audit directory and
environment, so the decision, the reply and the trail entries are the slow path's
(only the session-start entry's `writer_pid` names the server).  Everything the
answer depends on besides the input is the server's identity (`facts`): the uid,
the interpreter, the arguments and the environment variables the loader and the
writer read.  A client sends its facts with each request; a server whose own facts
differ declines, and the client decides in its own process.

Who may ask: only a process of this user (SO_PEERCRED), in this mount namespace,
and not sandboxed: a peer with no_new_privs set (every process `landgate run`
starts) is declined, so an agent inside a sandbox cannot have the server write
tool-level entries into the trail it may not write itself, nor have it read a
policy from outside its sandbox.  The peer is identified by its pidfd
(SO_PEERPIDFD, Linux 6.5), never by a pid that could be reused; without it every
request is declined.  The client checks its server the same way: a "server" started
inside a sandbox (whose agent could write the socket's directory) is not trusted.

Lifecycle: started detached by a client that found none; one per socket (a lock
file); the socket lives in $XDG_RUNTIME_DIR/landgate/ (else ~/.cache/landgate/run/),
a directory of the user's own that nobody else may enter, and is 0600; it exits
after IDLE_SECONDS without a request, on SIGTERM, and at once when landgate's code
changed under it (the next client starts a fresh one).  Any failure of the
server or of the exchange makes the client decide in its own process: the server
only ever changes the cost of a decision, never the decision.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from sandbox.integrations import hookproto as proto
from sandbox.sockio import recv_until_eof

IDLE_SECONDS = 600.0
_PACKAGE = Path(__file__).resolve().parents[1]


def code_fingerprint() -> list[tuple[str, int, int]]:
    """landgate's modules by (path, size, mtime): an edited or upgraded install differs."""
    out: list[tuple[str, int, int]] = []
    for dirpath, dirnames, filenames in os.walk(_PACKAGE):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith((".py", ".so")):
                st = os.stat(os.path.join(dirpath, name))
                out.append((os.path.join(dirpath, name), st.st_size, st.st_mtime_ns))
    out.sort()
    return out


class HookServer:
    def __init__(self, policy_arg: str | None, audit_dir: str | None) -> None:
        self.policy_arg = policy_arg
        self.audit_dir = audit_dir
        self.facts = proto.facts(policy_arg, audit_dir)
        self.code = code_fingerprint()

    def answer(self, conn: socket.socket) -> bool:
        """Serve one connection; False when the server should exit (code changed)."""
        conn.settimeout(5.0)
        why = proto.peer_refusal(conn)
        # Read (bounded) even a request that will be declined: closing on unread bytes
        # resets the connection and the client would not see why.
        data = recv_until_eof(conn, proto.MAX_REQUEST)
        if why is None and data is None:
            why = "request too large"
        request = proto.parse_request(data) if data is not None and why is None else None
        if why is None and request is None:
            why = "malformed request"
        if why is None and request is not None and request[0] != self.facts:
            why = "another setup (arguments or environment differ)"
        fresh = code_fingerprint() == self.code
        if why is None and not fresh:
            why = "landgate's code changed"
        if why is not None or request is None:
            conn.sendall(proto.decline(why or "declined"))
            return fresh
        from sandbox.integrations.hook import run_hook

        _facts, cwd, raw = request
        out, err, code = run_hook(
            raw,
            policy_arg=self.policy_arg,
            audit_dir=self.audit_dir,
            policy_cache=True,
            default_cwd=cwd,
        )
        conn.sendall(proto.reply(code, out, err))
        return True


def serve(policy_arg: str | None, audit_dir: str | None, *, idle: float = IDLE_SECONDS) -> int:
    """Bind this setup's socket and answer until idle; 0 when another server has it."""
    path = proto.socket_path(proto.facts(policy_arg, audit_dir))
    if path is None:
        return 1
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return 1  # not our private directory: serve nothing (clients decide themselves)
    lock_fd = os.open(
        path.removesuffix(".sock") + ".lock",
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        return 0  # another server serves this setup
    os.ftruncate(lock_fd, 0)
    os.write(lock_fd, f"{os.getpid()}\n".encode())  # who serves (`kill $(cat hook-*.lock)`)
    server = HookServer(policy_arg, audit_dir)
    # What a decision needs, imported before the first client waits for it.
    import sandbox.audit.writer
    import sandbox.integrations.hook
    import sandbox.integrations.judge
    import sandbox.integrations.toolaudit
    import sandbox.policy.diskcache
    import sandbox.policy.evaluate  # noqa: F401

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        try:
            os.unlink(path)  # a dead server's socket (we hold the lock: no live one)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(64)
        sock.settimeout(idle)
        while True:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                return 0  # idle
            with conn:
                try:
                    if not server.answer(conn):
                        return 0
                except OSError:
                    continue  # this client went away; the next one is served
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        sock.close()
        os.close(lock_fd)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sandbox.integrations.hookserver [--policy P] [--audit DIR]` (what
    hookclient.start_server runs).  LANDGATE_HOOK_IDLE: seconds before an idle exit."""
    args = list(sys.argv[1:] if argv is None else argv)
    policy_arg = audit_dir = None
    while args:
        flag = args.pop(0)
        if flag == "--policy" and args:
            policy_arg = args.pop(0)
        elif flag == "--audit" and args:
            audit_dir = args.pop(0)
        else:
            return 2
    # SIGTERM unwinds through serve()'s cleanup (the socket is removed).
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(0))
    try:
        idle = float(os.environ.get("LANDGATE_HOOK_IDLE", IDLE_SECONDS))
    except ValueError:
        idle = IDLE_SECONDS
    return serve(policy_arg, audit_dir, idle=idle)


if __name__ == "__main__":
    sys.exit(main())

"""`landgate hook claude-code` as Claude Code runs it: ask the resident server, else decide here;
inside `landgate run`, ask the session (and block the call when it does not answer).

    stdout, stderr, code = hook_command(raw, policy_arg, audit_dir)

The server (sandbox.integrations.hookserver) answers with exactly what `run_hook`
would answer in this process; this module imports only the standard library's
cheapest parts, so a call costs Python's start, a connect and a reply.  Whenever the
server is absent, declines, or the exchange fails in any way, the call is decided
here by `run_hook` itself (the slow path is the correct path: never an allow by
default), and an absent server is started, detached, for the next call.
LANDGATE_HOOK_SERVER=0 turns the server off (every call decided in its own process).
"""

from __future__ import annotations

import _socket as socket  # the C module (see hookproto: `socket` costs ~2 ms in a sandbox)
import os
import sys

from sandbox.integrations import hookproto as proto

TYPE_CHECKING = False  # typing costs ~2 ms to import: mypy reads this name as True
if TYPE_CHECKING:
    from typing import NoReturn

TIMEOUT_S = 10.0  # a server that has not answered by then is not waited for further
SESSION_TIMEOUT_S = 10.0  # inside `landgate run`: no answer by then blocks the call
MAX_REPLY = 1 << 20  # a reply is a JSON object and a line, not file contents


def main(policy_arg: str | None = None, audit_dir: str | None = None) -> NoReturn:
    """`landgate hook claude-code [--policy P] [--audit DIR]` as sandbox.entry runs it: what
    sandbox.cli's cmd_hook does, the same output, exit code and interrupt handling,
    without loading the command line's parser.  Exits by os._exit once the output is
    flushed and the exit handlers have run (the interpreter's finalisation would only
    add to every tool call), unless another thread still runs: then the ordinary exit,
    which waits for it (as sandbox.cli's `run` does)."""
    from sandbox.errors import LandgateError

    try:
        out, err, code = hook_command(sys.stdin.buffer.read(), policy_arg, audit_dir)
        if out:
            sys.stdout.write(out if out.endswith("\n") else out + "\n")
        if err:
            sys.stderr.write(err if err.endswith("\n") else err + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
    except LandgateError as exc:  # as sandbox.cli reports one (hook_command raises none)
        sys.stderr.write(f"landgate: {exc}\n")
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0  # as sandbox.cli: stdout closed early is not an error
    except OSError as exc:  # stdin unreadable: exit 2, which blocks (1 would not)
        try:
            sys.stderr.write(f"landgate hook: {exc} (tool call blocked)\n")
            sys.stderr.flush()
        except OSError:
            pass
        code = 2  # Claude Code blocks the call on exit 2 (1 would let it through)
    threading = sys.modules.get("threading")  # not imported: no thread was started
    if threading is not None:
        # The audit writer's flusher ran on a sandbox.threads worker, which stays (idle)
        # after the writer's close(): idle workers hold nothing, any other thread is waited
        # for by the ordinary exit.  (Counting the idle worker as running cost every hook
        # call the interpreter's finalisation, ~7 ms.)
        from sandbox import threads

        if not threads.only_idle_workers_besides_caller():
            raise SystemExit(code)
    import atexit  # built in: no file to open

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's own
    if run_exit_handlers is None:
        raise SystemExit(code)
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a handler's output to a closed stream: nothing left to tell
    os._exit(code & 0xFF)


def hook_command(
    raw: bytes, policy_arg: str | None = None, audit_dir: str | None = None
) -> tuple[str, str, int]:
    """The whole hook: (stdout, stderr, exit code), from the server or decided here."""
    if audit_dir is not None:
        audit_dir = os.path.abspath(audit_dir)  # the server's cwd is not ours
    session = os.environ.get("LANDGATE_SESSION_REPORT")
    if session:
        # Inside `landgate run`: the session decides (its policy, its trail).  Never
        # here: the trail is out of reach, and a decision nobody records is no decision.
        return ask_session(raw, session)
    start = False
    if os.environ.get("LANDGATE_HOOK_SERVER", "1") != "0":
        answer, start = ask_server(raw, policy_arg, audit_dir)
        if answer is not None:
            return answer
    from sandbox.integrations.hook import run_hook

    result = run_hook(raw, policy_arg=policy_arg, audit_dir=audit_dir, policy_cache=True)
    if start:
        start_server(policy_arg, audit_dir)
    return result


def ask_server(
    raw: bytes, policy_arg: str | None, audit_dir: str | None
) -> tuple[tuple[str, str, int] | None, bool]:
    """(the server's answer or None, whether no server is running for this setup)."""
    server_facts = proto.facts(policy_arg, audit_dir)
    path = proto.socket_path(server_facts)
    if path is None:
        return None, False
    try:
        cwd = os.getcwd()
        st = os.lstat(os.path.dirname(path))
    except FileNotFoundError:
        return None, True
    except OSError:
        return None, False
    # Only a directory of ours that nobody else can enter holds a socket we trust.
    if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None, False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(TIMEOUT_S)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None, True
        if proto.peer_refusal(sock) is not None:
            return None, False  # not a server of ours outside any sandbox: decide here
        sock.sendall(proto.request(server_facts, cwd, raw))
        sock.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None, False  # a timeout or a broken exchange: decide here
    finally:
        sock.close()
    parsed = proto.parse_reply(b"".join(chunks))
    if isinstance(parsed, tuple):
        return parsed, False
    return None, False  # declined (or malformed): decide here


def ask_session(raw: bytes, path: str) -> tuple[str, str, int]:
    """The session's answer, or exit 2 (the call blocked) with why there is none: no
    answer within SESSION_TIMEOUT_S, the socket refused or gone, an answer that is not
    one, or a listener that is not the session (a process of this sandbox that took the
    socket's name could otherwise answer "allow")."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    chunks: list[bytes] = []
    try:
        sock.settimeout(SESSION_TIMEOUT_S)
        sock.connect(path)
        why = proto.session_peer_refusal(sock)
        if why is not None:
            return _blocked(f"{path} is not the session's ({why})")
        try:
            sock.sendall(proto.request(b"", cwd, raw))
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the session refused before reading it all: its reply says why
        size = 0
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_REPLY:
                return _blocked(f"the session's answer at {path} is larger than {MAX_REPLY}")
            chunks.append(chunk)
    except TimeoutError:
        return _blocked(f"the session did not answer within {SESSION_TIMEOUT_S:.0f} s at {path}")
    except OSError as exc:
        return _blocked(f"the session did not answer at {path}: {exc.strerror or exc}")
    finally:
        sock.close()
    parsed = proto.parse_reply(b"".join(chunks))
    if isinstance(parsed, tuple):
        return parsed
    if isinstance(parsed, str):
        return _blocked(f"the session declined: {parsed}")
    return _blocked(f"the session's answer at {path} is malformed")


def _blocked(why: str) -> tuple[str, str, int]:
    """Exit 2: Claude Code blocks the call and shows the line (never an allow)."""
    return "", f"landgate hook: {why} (tool call blocked)\n", 2


def start_server(policy_arg: str | None, audit_dir: str | None) -> None:
    """Start this setup's server, detached; a failure only means the next call is slow too."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "sandbox.integrations.hookserver"]
    if policy_arg is not None:
        argv += ["--policy", policy_arg]
    if audit_dir is not None:
        argv += ["--audit", audit_dir]
    try:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
    except OSError:
        pass

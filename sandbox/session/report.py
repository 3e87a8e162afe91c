"""The session's hook channel: the hook inside the sandbox asks, the session decides.

`landgate run` listens on a unix stream socket (in a private 0700 directory, its path
in LANDGATE_SESSION_REPORT).  `landgate hook claude-code`, started by the agent inside
the sandbox, sends its PreToolUse input there (sandbox.integrations.hookproto's request)
and prints the answer.  The session, outside the sandbox and holding the policy in
force, decides with the hook's own decision function (the `decider` it is given:
sandbox.integrations.hook.SessionDecider, handed in by the CLI because the session
layer may not import the integrations) and records each decision through its own
writer: layer `tool-hook`, landgate's decision, not flagged.

What a sandbox process can do with the socket is ask: it chooses the tool call, never
the verdict.  There is no route by which bytes from the sandbox become a decision entry
as they are (the one-way datagram reports of the previous design, which recorded what
the hook claimed, are gone: the hook and the session are always the same install, so
there is no old client to serve, and a channel that records claims is one more way to
put entries in the trail).  What the session cannot decide is still recorded, flagged
`reported-from-sandbox` and `malformed`, and answered with an error (the hook then
blocks the call): a request that is not one (wrong framing, not a PreToolUse input),
larger than MAX_REQUEST, or not complete within READ_TIMEOUT_S.  Bounds: MAX_CLIENTS
connections at once, MAX_REQUESTS per session; beyond them a request is refused
(answered with an error, never decided) and counted, one entry says so at the end.

The sandbox reaches the socket because the plan grants exactly that path (a network
allow `unix:<path>`, origin "baseline", added by `grant`), not the user's policy.
The supervisor makes the sandbox's connect on its behalf, so the kernel's peer
credentials name landgate, not the asker: nothing here depends on who asks.

This module: the socket, its threads and the entries.  What the policy gains for the
hook is hookgrant.py's; the one thread decisions run on is deciding.py's.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable, Mapping

from sandbox.audit.entries import REPORTED_FLAG
from sandbox.audit.writer import AuditWriter
from sandbox.errors import AuditError, LaunchError
from sandbox.host.fsutil import private_dir, remove_tree
from sandbox.policy.model import Policy
from sandbox.session.deciding import DecidingThread
from sandbox.session.hookgrant import grant_hook
from sandbox.sockio import recv_until_eof

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
# (`from __future__ import annotations`); the checker sees the Protocol, run time a plain class.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol
else:
    Protocol = object

_DecidingThread = DecidingThread  # its name here before it moved to deciding.py

ENV = "LANDGATE_SESSION_REPORT"
FLAG = REPORTED_FLAG  # "reported-from-sandbox": `landgate audit show` marks these rows
LAYER = "tool-hook"
MAX_REQUEST = (16 << 20) + (1 << 16)  # the hook's own input bound, plus framing and cwd
MAX_REQUESTS = 100_000  # per session; beyond that requests are refused and counted
MAX_CLIENTS = 16  # connections served at once; beyond that refused and counted
WARM_AFTER_S = 0.5  # the decider is warmed once a session has lived this long
READ_TIMEOUT_S = 10.0  # a request not complete by then is not waited for further

if TYPE_CHECKING:
    Sink = Callable[[dict[str, Any]], None]


class HookDecider(Protocol):
    """The tool-level decision the channel answers with (the integrations layer's)."""

    def answer(self, request: bytes, policy: Policy, sink: Sink) -> tuple[bytes, str | None]:
        """The reply to one request, and why it could not be decided (None: decided,
        its entries written through `sink`)."""

    def refuse(self, reason: str) -> bytes:
        """An error reply (the hook blocks the call and shows `reason`)."""

    def warm(self, policy: Policy) -> None:
        """Build what a first decision would (nothing recorded)."""


class ReportChannel:
    """The socket, its accepting thread, the threads serving requests, the entries."""

    def __init__(self, decider: HookDecider) -> None:
        # 0700, made by this call (tempfile.mkdtemp's contract, without importing tempfile
        # and the random and weakref modules it pulls in: sandbox.host.fsutil)
        self.directory = private_dir("landgate-report-")
        self.path = os.path.join(self.directory, "s")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind(self.path)
            self.sock.listen(MAX_CLIENTS)
            # The accepting thread waits in select on the socket and on _wake, which
            # close() writes to: a poll interval here cost every `landgate run` its
            # length at exit (0.2 s was ~180 ms of the CLI's launch-to-exit time).
            self.sock.setblocking(False)
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        except OSError as exc:
            self.sock.close()
            remove_tree(self.directory)
            raise LaunchError(f"session hook socket {self.path}: {exc.strerror}") from None
        self.received = 0
        self.dropped = 0
        self._decider = decider
        self._policy: Policy | None = None
        self._writer: AuditWriter | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._entry: str | None = None
        # One decision at a time, always on the same thread: the policy's lazily built
        # caches are shared, and the C exec judge's buffers are per thread (making them
        # costs ~15 ms: a thread per request would pay it on every call).
        self._decide = threading.Lock()
        self._warmed = False  # only the accepting thread reads and sets it
        # Made at the first warm-up or request (most sessions never run a hook): a plain
        # thread and a queue, not concurrent.futures, whose import (and the logging it
        # imports) cost ~5 ms on the first hook's path when it came before the warm-up.
        self._decider_thread: DecidingThread | None = None
        self._executor_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._clients_lock = threading.Lock()

    def grant(self, policy: Policy, environ: Mapping[str, str]) -> Policy:
        """The policy with what the hook needs, origin baseline, exactly (hookgrant.py:
        this socket, landgate's own install, the `landgate` entry point).  The policy
        returned is the one requests are decided by."""
        self._policy, self._entry = grant_hook(policy, self.path, environ)
        return self._policy

    def start(self, writer: AuditWriter) -> None:
        """Answer requests into `writer`'s session (call once the session has started)."""
        self._writer = writer
        self._thread = threading.Thread(target=self._loop, name="landgate-hook", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop answering (requests being served are finished or cut off), remove the
        socket, and record what was refused."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # closed already (a second close): the thread has ended
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._clients_lock:
            clients = list(self._clients.items())
        for conn, _thread in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # a client still sending is cut off
            except OSError:
                pass
        for _conn, thread in clients:
            thread.join()
        with self._executor_lock:
            decider, self._decider_thread = self._decider_thread, None
        if decider is not None:
            decider.stop()
        if self.dropped and self._writer is not None:
            self._problem(
                "dropped",
                f"{self.dropped} hook request(s) refused: more than {MAX_REQUESTS} a session "
                f"or {MAX_CLIENTS} at once",
            )
        self.sock.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass  # a second close
        remove_tree(self.directory)

    def _executor(self) -> DecidingThread:
        """The one thread decisions run on (made on first use; see __init__)."""
        with self._executor_lock:
            if self._decider_thread is None:
                self._decider_thread = DecidingThread()
            return self._decider_thread

    def _warm(self) -> None:
        if not self._warmed and self._policy is not None:
            self._warmed = True
            self._executor().post(self._decider.warm, self._policy)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except BlockingIOError:
                # The decider is warmed (imports, the exec judge's tables: ~30 ms of CPU
                # and the GIL) once the session has lived WARM_AFTER_S, or at the first
                # request: a short command (`landgate run -- make`, a CI step) that never
                # runs a hook does not pay it, nor wait for it at close.
                try:
                    ready, _, _ = select.select(
                        [self.sock.fileno(), self._wake_r],
                        [],
                        [],
                        None if self._warmed else WARM_AFTER_S,
                    )
                except (OSError, ValueError):
                    return  # the socket was closed under us
                if not ready and not self._stop.is_set():
                    self._warm()
                continue
            except OSError:
                return  # the socket was closed under us: nothing more to answer
            self._warm()
            if not self._slots.acquire(blocking=False):
                # Refused at once, never queued behind a client that does not send.
                self._count_dropped()
                _send_and_close(conn, self._decider.refuse("too many hook requests at once"))
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._clients_lock:
                self._clients[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            reply = self._reply(conn)
            if reply is not None:
                conn.sendall(reply)
        except OSError:
            pass  # the asker went away: it blocks the call itself (no answer = no allow)
        finally:
            conn.close()
            with self._clients_lock:
                self._clients.pop(conn, None)
            self._slots.release()

    def _reply(self, conn: socket.socket) -> bytes | None:
        conn.settimeout(READ_TIMEOUT_S)
        with self._decide:
            self.received += 1
            over = self.received > MAX_REQUESTS
        if over:
            self._count_dropped()
            return self._decider.refuse(f"more than {MAX_REQUESTS} hook requests this session")
        try:
            data = recv_until_eof(conn, MAX_REQUEST)
        except TimeoutError:
            self._problem("malformed", f"request not complete within {READ_TIMEOUT_S:.0f} s")
            return self._decider.refuse("request not complete in time")
        if data is None:
            self._problem("malformed", f"request larger than {MAX_REQUEST} bytes")
            return self._decider.refuse(f"request larger than {MAX_REQUEST} bytes")
        assert self._policy is not None  # grant() ran before the session started
        reply: bytes
        problem: str | None
        with self._decide:
            reply, problem = self._executor().call(
                self._decider.answer, data, self._policy, self._append
            )
        if problem is not None:
            self._problem("malformed", f"malformed request ({len(data)} bytes): {problem[:300]}")
        return reply

    def _count_dropped(self) -> None:
        with self._decide:
            self.dropped += 1

    def _append(self, entry: dict[str, Any]) -> None:
        """The decider's sink: one decision of this session.  Raises AuditError when the
        trail cannot take it (the hook then blocks the call)."""
        if self._writer is None:
            raise AuditError("session hook channel: no trail yet")
        entry.setdefault("layer", LAYER)
        entry.setdefault("ts", time.time())
        if self._writer.append(entry) < 0:
            raise AuditError("the session's trail has failed")

    def _problem(self, kind: str, reason: str) -> None:
        """A request from the sandbox the session did not decide: flagged, never a
        decision of landgate's own."""
        if self._writer is None:
            return
        try:
            self._writer.append(
                {
                    "action": "tool_call",
                    "target": "(session hook channel)",
                    "result": kind,
                    "reason": reason,
                    "layer": LAYER,
                    "ts": time.time(),
                    "flags": [FLAG, kind],
                }
            )
        except AuditError:
            # The writer has told run_session through on_failure: the session fails closed.
            return


def _send_and_close(conn: socket.socket, data: bytes) -> None:
    """Refuse without waiting on the client.  What it has already sent is read first
    (up to 1 MiB): closing a unix stream socket with unread data resets the peer,
    which would then not see the reply (it blocks the call either way)."""
    try:
        conn.setblocking(False)  # never wait on a client that does not read
        conn.send(data)
        for _ in range(16):
            if not conn.recv(1 << 16):
                break
    except OSError:
        pass
    finally:
        conn.close()

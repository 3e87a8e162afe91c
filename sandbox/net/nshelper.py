"""The unprivileged rung's helper: pasta and the nftables ruleset of the sandbox's namespace.

    python3 -I -S nshelper.py PARENT_PID      (started by sandbox.net.session; stdlib only)

Why a separate process: the sandbox's network namespace belongs to its user
namespace (the launcher's LG_NS_NET).  Loading nftables there needs a netlink
socket opened *inside* that network namespace, and setns(2) into it needs
CAP_SYS_ADMIN in the caller's own user namespace too (netns_install), which an
unprivileged landgate lacks; it must first setns(CLONE_NEWUSER), which the
kernel refuses to a multi-threaded process (EINVAL) - landgate has threads.
This process is exec'd fresh (no fork of a threaded interpreter), is
single-threaded, and as the user namespace's owner it may join it.

Lifetime: PR_SET_PDEATHSIG(SIGKILL) on landgate, checked against PARENT_PID
after the prctl (landgate may have died before it); pasta is this process's
child with the same death signal, so SIGKILL of landgate takes the helper and
pasta down, and with them the last references to the namespace.  EOF on stdin
(landgate's close()) kills pasta and exits.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
  {"op": "attach", "pid": P, "pasta": [argv], "routes": ["4", "6"], "ruleset": {...},
   "timeout": S}
      open /proc/P/ns/{user,net} (P is the agent, blocked before its execve, so
      the pid cannot be reused), start pasta, join the namespaces, load the
      ruleset (one atomic batch), wait until pasta's default routes exist;
      reply {"ok": true, "pasta_pid": N} or {"ok": false, "error": "..."}.
  {"op": "nft", "batch": {...}}   run a batch (set elements from the DNS view).

The loopback-only layer (sandbox/net/rung_lo.py; started with a second argument,
the fd of a unix socket to landgate) needs neither pasta nor nft:
  {"op": "attach_lo", "pid": P, "dns_port": 53, "ports": [...]}
      join P's namespaces, bring `lo` up, bind the DNS view's UDP + TCP sockets on
      127.0.0.1 and a TCP listener on 127.0.0.1 and ::1 for each port, and send
      them to landgate (SCM_RIGHTS, with their description as the message);
      reply {"ok": true, "sent": N}.
  {"op": "bind", "ports": [...]}   more listeners (a `localhost:*` rescan), sent alike.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from typing import Any

PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
NFT_CTX_OUTPUT_JSON = 1 << 4

_libc = ctypes.CDLL(None, use_errno=True)


class HelperError(Exception):
    pass


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise HelperError(f"{what}: {os.strerror(e)}")


def die_with_parent(parent: int) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl PR_SET_PDEATHSIG")
    if os.getppid() != parent:  # the parent died before the prctl: nobody would kill us
        os._exit(1)


class Nft:
    """libnftables in this process's (joined) network namespace."""

    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL("libnftables.so.1", use_errno=True)
        except OSError as exc:
            raise HelperError(f"libnftables: {exc}") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise HelperError("libnftables: nft_ctx_new failed")
        lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        self._lib, self._ctx = lib, ctx

    def run(self, batch: object) -> None:
        rc = self._lib.nft_run_cmd_from_buffer(self._ctx, json.dumps(batch).encode())
        if rc != 0:
            err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
            first = next((ln for ln in err.splitlines() if ln.strip()), "batch refused")
            raise HelperError(f"nft: {first} (rc {rc})")


def start_pasta(argv: list[str], log_fd: int) -> int:
    """fork + exec pasta in the foreground, dying with this process."""
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent(me)
            # As subprocess does: the interpreter ignores SIGPIPE/SIGXFSZ and exec keeps an
            # ignored disposition (pasta refuses to start with SIGPIPE already ignored).
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            null = os.open("/dev/null", os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.execvp(argv[0], argv)
        except BaseException as exc:  # noqa: BLE001  (the forked child must reach _exit)
            os.write(2, f"exec {argv[0]}: {exc}\n".encode())
        os._exit(127)
    return pid


def default_routes() -> set[str]:
    """Families with a default route in this process's network namespace (/proc/self/net)."""
    have: set[str] = set()
    try:
        with open("/proc/self/net/route") as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                if len(f) > 7 and f[1] == "00000000" and f[7] == "00000000":
                    have.add("4")
    except OSError:
        pass
    try:
        with open("/proc/self/net/ipv6_route") as fh:
            for line in fh:
                f = line.split()
                # the kernel's own unreachable default lives on lo
                if len(f) >= 10 and f[0] == "0" * 32 and f[1] == "00" and f[9] != "lo":
                    have.add("6")
    except OSError:
        pass
    return have


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """`ip link set lo up` in this thread's network namespace (SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack_from("16sH", ifr)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def bind_sockets(dns_port: int | None, ports: list[int]) -> list[tuple[list[Any], socket.socket]]:
    """The DNS view's sockets and the forwarder's listeners, made in this namespace."""
    made: list[tuple[list[Any], socket.socket]] = []
    if dns_port is not None:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", dns_port))
            if kind == socket.SOCK_STREAM:
                s.listen(64)
            made.append((["dns", "127.0.0.1", dns_port], s))
    for port in ports:
        for addr, fam in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
            s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, port))
                s.listen(4096)
            except OSError:
                s.close()  # taken by the sandbox's own server, or no ::1
                continue
            made.append((["lo", addr, port], s))
    return made


class Helper:
    def __init__(self, fd_sock: socket.socket | None = None) -> None:
        self.fd_sock = fd_sock
        self.nft: Nft | None = None
        self.pasta = -1
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (pasta's stderr, for the process's life)

    def pasta_failed(self) -> str | None:
        if self.pasta <= 0:
            return None
        pid, status = os.waitpid(self.pasta, os.WNOHANG)
        if pid == 0:
            return None
        self.pasta = -1
        self.log.seek(0)
        text = " ".join(
            ln.strip()
            for ln in self.log.read().decode(errors="replace").splitlines()
            if ln.strip() and "syslog" not in ln
        )
        return f"pasta exited ({os.waitstatus_to_exitcode(status)}): {text[:300] or 'no message'}"

    def attach(self, req: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        pid = int(req["pid"])
        # Pinned before pasta starts: these fds are the namespaces we configure.
        user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if req.get("pasta"):
            self.pasta = start_pasta(list(req["pasta"]), self.log.fileno())
        # As the user namespace's owner we hold every capability in it; the
        # kernel refuses CLONE_NEWUSER to a threaded caller (this one is not).
        _check(_libc.setns(user_fd, CLONE_NEWUSER), "setns user namespace")
        _check(_libc.setns(net_fd, CLONE_NEWNET), "setns network namespace")
        os.close(user_fd)
        os.close(net_fd)
        self.nft = Nft()
        self.nft.run(req["ruleset"])
        t_nft = time.monotonic()
        want = set(req.get("routes") or [])
        deadline = time.monotonic() + float(req.get("timeout", 10))
        while not want <= default_routes():
            failed = self.pasta_failed()
            if failed:
                raise HelperError(failed)
            if time.monotonic() > deadline:
                raise HelperError(
                    f"pasta did not configure the namespace within {req.get('timeout', 10)} s "
                    f"(default routes wanted: {sorted(want)}, present: "
                    f"{sorted(default_routes())})"
                )
            time.sleep(0.001)
        t_end = time.monotonic()
        return {
            "ok": True,
            "pasta_pid": self.pasta,
            "ms": {
                "pasta+setns+nft": round((t_nft - t0) * 1e3, 2),
                "routes_wait": round((t_end - t_nft) * 1e3, 2),
            },
        }

    def attach_lo(self, req: dict[str, Any]) -> dict[str, Any]:
        pid = int(req["pid"])
        user_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        net_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(user_fd, CLONE_NEWUSER), "setns user namespace")
            _check(_libc.setns(net_fd, CLONE_NEWNET), "setns network namespace")
        finally:
            os.close(user_fd)
            os.close(net_fd)
        loopback_up()
        return self.send(bind_sockets(int(req["dns_port"]), [int(p) for p in req["ports"]]))

    def bind(self, req: dict[str, Any]) -> dict[str, Any]:
        return self.send(bind_sockets(None, [int(p) for p in req["ports"]]))

    def send(self, made: list[tuple[list[Any], socket.socket]]) -> dict[str, Any]:
        if self.fd_sock is None:
            raise HelperError("no socket to landgate (started without one)")
        try:
            desc = json.dumps([d for d, _ in made]).encode()
            socket.send_fds(self.fd_sock, [desc], [s.fileno() for _, s in made])
        finally:
            for _, s in made:
                s.close()  # landgate holds them now
        return {"ok": True, "sent": len(made)}

    def nft_batch(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.nft is None:
            raise HelperError("not attached")
        self.nft.run(req["batch"])
        return {"ok": True}

    def stop(self) -> None:
        if self.pasta > 0:
            try:
                os.kill(self.pasta, signal.SIGKILL)
                os.waitpid(self.pasta, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pasta = -1


def main() -> int:
    die_with_parent(int(sys.argv[1]))
    fd_sock = socket.socket(fileno=int(sys.argv[2])) if len(sys.argv) > 2 else None
    helper = Helper(fd_sock)
    out = sys.stdout
    try:
        for line in sys.stdin:
            try:
                req = json.loads(line)
                if req.get("op") == "attach":
                    reply = helper.attach(req)
                elif req.get("op") == "attach_lo":
                    reply = helper.attach_lo(req)
                elif req.get("op") == "bind":
                    reply = helper.bind(req)
                elif req.get("op") == "nft":
                    reply = helper.nft_batch(req)
                else:
                    reply = {"ok": False, "error": f"unknown op {req.get('op')!r}"}
            except (HelperError, OSError, ValueError, KeyError) as exc:
                reply = {"ok": False, "error": str(exc)}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        helper.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Protected paths decided at access time by seccomp + a supervisor (prototype, both rungs).

    protect_gate.py [--off] --home H -- CMD...

The BPF filter sends to the supervisor only the syscalls that create, write, rename or link
names: open/openat with O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND in their flags, creat,
rename*, link*, symlink*, mkdir*, mknod*, truncate.  Read-only opens, unlink and everything
else never leave the kernel.  openat2 gets ENOSYS (its flags live in a struct the filter
cannot read; glibc never uses it for open(3), callers fall back).

Decision on the REAL path of the resulting name: the parent directory is opened in the
caller's view (relative to its cwd or dirfd, taken with pidfd_getfd), its real path read back
from /proc/self/fd, and the last component appended.  The supervisor then performs the
operation itself on (parent fd, last component) and returns the result (ADDFD for opens), so
a path rewritten in the caller's memory, or a directory swapped for a symlink after the
check, changes nothing: the object judged is the object acted on.

Protected (writes, creates, renames and links onto them are refused with EPERM/EACCES):
shell start-up files, ~/.gitconfig, ~/.config/git/, autostart, systemd user units,
**/.git/hooks/* (except *.sample, which git init writes and git never runs), and the
ancestors of those paths as the DESTINATION of a rename or symlink (renaming a prepared
~/.config-to-be into place).  Git config files (**/.git/config, config.worktree, modules/*/
config) are content-judged: a write-open is refused; a rename onto one (git's lock file
protocol) is judged by gitcfg.judge on the bytes, and the supervisor installs a copy of
exactly those bytes (so a write to the lock file after the check cannot change what lands).

Prototype limits (the implementation has them in C already, csrc/supervise_open.c): the
supervisor acts with its own credentials and without the agent's Landlock domain; linkat
with AT_EMPTY_PATH and RENAME_WHITEOUT are refused.
"""

import ctypes
import fnmatch
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gitcfg

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]

NR = {
    "open": 2,
    "creat": 85,
    "openat": 257,
    "openat2": 437,
    "rename": 82,
    "renameat": 264,
    "renameat2": 316,
    "link": 86,
    "linkat": 265,
    "symlink": 88,
    "symlinkat": 266,
    "mkdir": 83,
    "mkdirat": 258,
    "mknod": 133,
    "mknodat": 259,
    "truncate": 76,
}
WRITE_BITS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
AT_FDCWD = -100
RECV, SEND, ADDFD = 0xC0502100, 0xC0182101, 0x40182103
FLAG_CONTINUE, ADDFD_SEND = 1, 2
NR_SECCOMP, NR_PIDFD_OPEN, NR_PIDFD_GETFD = 317, 434, 438
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2


def filter_program():
    """arch check; the name-changing calls to the supervisor; open/openat only when their
    flags ask to write or create; openat2 ENOSYS.  A tiny assembler with labels."""
    always = [NR[n] for n in NR if n not in ("open", "openat", "openat2")]
    W, A = 0x20, 0x06  # ld word abs, ret
    prog = [(W, None, None, 4), (0x15, None, "kill", 0xC000003E), (W, None, None, 0)]
    prog += [(0x15, "notif", None, nr) for nr in always]
    prog += [(0x15, "enosys", None, NR["openat2"]), (0x15, "open", None, NR["open"])]
    prog += [(0x15, "openat", "allow", NR["openat"])]
    prog += [("open", W, None, None, 24), (0x45, "notif", "allow", WRITE_BITS)]
    prog += [("openat", W, None, None, 32), (0x45, "notif", "allow", WRITE_BITS)]
    prog += [("allow", A, None, None, 0x7FFF0000), ("notif", A, None, None, 0x7FC00000)]
    prog += [("enosys", A, None, None, 0x00050000 | 38), ("kill", A, None, None, 0x80000000)]
    labels = {ins[0]: i for i, ins in enumerate(prog) if isinstance(ins[0], str)}
    out = b""
    for i, ins in enumerate(prog):
        code, jt, jf, k = ins[1:] if isinstance(ins[0], str) else ins
        jt_off = 0 if jt is None else labels[jt] - i - 1
        jf_off = 0 if jf is None else labels[jf] - i - 1
        out += struct.pack("=HBBI", code, jt_off, jf_off, k)
    return out


def install_filter():
    prog = filter_program()
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = ctypes.create_string_buffer(
        struct.pack("=HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf)), 16
    )
    if _libc.prctl(38, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "no_new_privs")
    fd = _libc.syscall(NR_SECCOMP, 1, 1 << 3, fprog)  # SET_MODE_FILTER, NEW_LISTENER
    if fd < 0:
        raise OSError(ctypes.get_errno(), "seccomp")
    return fd


class Policy:
    def __init__(self, home):
        h = os.path.realpath(home)
        self.files = [
            f"{h}/{n}"
            for n in (
                ".bashrc",
                ".bash_profile",
                ".bash_login",
                ".bash_logout",
                ".profile",
                ".zshrc",
                ".zshenv",
                ".zprofile",
                ".zlogin",
                ".gitconfig",
            )
        ]
        self.dirs = [
            f"{h}/.config/git",
            f"{h}/.config/autostart",
            f"{h}/.config/systemd/user",
            f"{h}/.local/share/systemd",
            f"{h}/.config/fish",
        ]
        self.git_config = ["*/.git/config", "*/.git/config.worktree", "*/.git/modules/*/config"]
        self.ancestors = {os.path.dirname(p) for p in self.files + self.dirs}
        for start in [*self.ancestors, *self.dirs]:
            d = start
            while d not in (h, "/"):
                self.ancestors.add(d)
                d = os.path.dirname(d)
        self.ancestors.discard(h)

    def protected(self, path):
        """'git-config', 'protected' or None for a resulting name."""
        if any(fnmatch.fnmatchcase(path, p) for p in self.git_config):
            return "git-config"
        if path in self.files or any(path == d or path.startswith(d + "/") for d in self.dirs):
            return "protected"
        if fnmatch.fnmatchcase(path, "*/.git/hooks/*") and not path.endswith(".sample"):
            return "protected"
        return None

    def ancestor(self, path):
        return (
            path in self.ancestors
            or os.path.basename(path) == ".git"
            or fnmatch.fnmatchcase(path, "*/.git/hooks")
            or fnmatch.fnmatchcase(path, "*/.git/modules")
        )


class Supervisor:
    def __init__(self, listener, policy, log):
        self.fd, self.policy, self.log = listener, policy, log

    def read_str(self, pid, addr):
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as m:
            m.seek(addr)
            data = m.read(4096)
        if b"\0" not in data:
            raise OSError(36, "name too long")
        return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    def base_fd(self, pid, dirfd):
        """An fd of the directory a relative name starts from, in the caller's view."""
        if dirfd == AT_FDCWD:
            return os.open(f"/proc/{pid}/cwd", os.O_PATH | os.O_DIRECTORY)
        pidfd = _libc.syscall(NR_PIDFD_OPEN, pid, 0)
        if pidfd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_open")
        try:
            fd = _libc.syscall(NR_PIDFD_GETFD, pidfd, dirfd, 0)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "pidfd_getfd")
            return fd
        finally:
            os.close(pidfd)

    def resolve(self, pid, dirfd, path):
        """(parent fd, last component, real path of the resulting name)."""
        path = path.rstrip("/") or "/"
        parent, last = os.path.split(path)
        if last in ("", ".", ".."):
            raise OSError(22, "no last component")
        base = self.base_fd(pid, dirfd)
        try:
            # absolute: the caller's root is ours in this prototype (RESOLVE_IN_ROOT in C)
            pfd = os.open(parent or ".", os.O_PATH | os.O_DIRECTORY, dir_fd=base)
        finally:
            os.close(base)
        real = os.readlink(f"/proc/self/fd/{pfd}")
        return pfd, last, os.path.join(real, last)

    def decide(self, req):
        nr, pid, a = req["nr"], req["pid"], req["args"]
        name = {v: k for k, v in NR.items()}[nr]

        def i32(v):  # an int argument: the low 32 bits, signed
            v &= 0xFFFFFFFF
            return v - (1 << 32) if v >= 1 << 31 else v

        if name in ("open", "openat", "creat"):
            dirfd, p, flags, mode = {
                "open": (AT_FDCWD, a[0], a[1], a[2]),
                "openat": (i32(a[0]), a[1], i32(a[2]), a[3]),
                "creat": (AT_FDCWD, a[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, a[1]),
            }[name]
            pfd, last, real = self.resolve(pid, dirfd, self.read_str(pid, p))
            try:
                why = self.policy.protected(real)
                if why:
                    self.log(f"denied {name} {real!r} ({why})")
                    return ("error", 13)
                fd = os.open(last, (flags & ~os.O_CLOEXEC) | os.O_NOFOLLOW, mode, dir_fd=pfd)
                return ("fd", fd, flags & os.O_CLOEXEC)
            finally:
                os.close(pfd)
        if name in ("rename", "renameat", "renameat2", "link", "linkat"):
            at = name.endswith("at") or name == "renameat2"
            od, op, nd, np_ = (
                (i32(a[0]), a[1], i32(a[2]), a[3]) if at else (AT_FDCWD, a[0], AT_FDCWD, a[1])
            )
            flags = i32(a[4]) if name in ("renameat2", "linkat") else 0
            spfd, slast, sreal = self.resolve(pid, od, self.read_str(pid, op))
            dpfd, dlast, dreal = self.resolve(pid, nd, self.read_str(pid, np_))
            try:
                if name == "renameat2" and flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
                    return ("error", 22)  # RENAME_WHITEOUT: overlayfs's, not an agent's
                if name == "linkat" and flags & ~0x400:  # only AT_SYMLINK_FOLLOW
                    return ("error", 1)
                why = self.policy.protected(dreal)
                if flags & RENAME_EXCHANGE and name == "renameat2":
                    # both names are destinations: judge the source name as one too
                    why = why or self.policy.protected(sreal)
                    if why or self.policy.ancestor(sreal):
                        why = why or "ancestor"
                if why == "git-config" and name.startswith("rename"):
                    return self.git_config_rename(spfd, slast, dpfd, dlast, dreal)
                if why or self.policy.ancestor(dreal):
                    self.log(f"denied {name} {sreal!r} -> {dreal!r} ({why or 'ancestor'})")
                    return ("error", 1)
                if name.startswith("rename"):
                    rc = _libc.renameat2(
                        spfd,
                        slast.encode("utf-8", "surrogateescape"),
                        dpfd,
                        dlast.encode("utf-8", "surrogateescape"),
                        flags,
                    )
                    if rc != 0:
                        return ("error", ctypes.get_errno())
                else:
                    os.link(
                        slast, dlast, src_dir_fd=spfd, dst_dir_fd=dpfd,
                        follow_symlinks=bool(flags & 0x400),
                    )  # fmt: skip
                return ("value", 0)
            finally:
                os.close(spfd)
                os.close(dpfd)
        if name in ("symlink", "symlinkat"):
            target = self.read_str(pid, a[0])
            nd, np_ = (i32(a[1]), a[2]) if name == "symlinkat" else (AT_FDCWD, a[1])
            pfd, last, real = self.resolve(pid, nd, self.read_str(pid, np_))
            try:
                why = self.policy.protected(real)
                if why or self.policy.ancestor(real):
                    self.log(f"denied {name} {real!r} ({why or 'ancestor'})")
                    return ("error", 1)
                os.symlink(target, last, dir_fd=pfd)
                return ("value", 0)
            finally:
                os.close(pfd)
        # mkdir, mknod, truncate: mkdir is harmless (an empty directory runs nothing; what
        # is created inside it is judged again); mknod/truncate are judged like a write
        at = name.endswith("at")
        d, p = (i32(a[0]), a[1]) if at else (AT_FDCWD, a[0])
        pfd, last, real = self.resolve(pid, d, self.read_str(pid, p))
        try:
            if name.startswith("mkdir"):
                os.mkdir(last, (a[2] if at else a[1]) & 0o7777, dir_fd=pfd)
                return ("value", 0)
            if self.policy.protected(real):
                self.log(f"denied {name} {real!r}")
                return ("error", 1)
            if name == "truncate":
                fd = os.open(last, os.O_WRONLY | os.O_NOFOLLOW, dir_fd=pfd)
                try:
                    os.ftruncate(fd, a[1])
                finally:
                    os.close(fd)
                return ("value", 0)
            os.mknod(last, (a[2] if at else a[1]), (a[3] if at else a[2]), dir_fd=pfd)
            return ("value", 0)
        finally:
            os.close(pfd)

    def git_config_rename(self, spfd, slast, dpfd, dlast, dreal):
        """Judge the bytes, then install a copy of exactly those bytes (the caller's lock
        file may still be open for writing: what it writes after this is never installed)."""
        src = os.open(slast, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=spfd)
        try:
            st = os.fstat(src)
            new = b""
            while chunk := os.read(src, 1 << 16):
                new += chunk
        finally:
            os.close(src)
        try:
            old_fd = os.open(dlast, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dpfd)
            with os.fdopen(old_fd, "rb") as f:
                old = f.read()
        except FileNotFoundError:
            old = b""
        bad = gitcfg.judge(old, new)
        if bad:
            for key, value, why in bad:
                self.log(f"denied git config {key}={value!r} in {dreal!r} ({why})")
            return ("error", 1)
        tmp = f".{dlast}.landgate-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o777, dir_fd=dpfd)
        try:
            os.write(fd, new)
        finally:
            os.close(fd)
        os.rename(tmp, dlast, src_dir_fd=dpfd, dst_dir_fd=dpfd)
        os.unlink(slast, dir_fd=spfd)
        return ("value", 0)

    def serve(self):
        req = ctypes.create_string_buffer(80)
        while True:
            ctypes.memset(req, 0, 80)
            if _libc.ioctl(self.fd, RECV, req) != 0:
                e = ctypes.get_errno()
                if e in (4, 2):  # EINTR, ENOENT (the caller was interrupted)
                    continue
                return
            nid, pid, _flags, nr, _arch, _ip = struct.unpack_from("=QIIiIQ", req.raw)
            args = struct.unpack_from("=6Q", req.raw, 32)
            try:
                verdict = self.decide({"nr": nr, "pid": pid, "args": args})
            except OSError as e:
                verdict = ("error", e.errno or 1)
            except Exception as e:  # noqa: BLE001 -- a bug in the judge is a refusal, never an allow
                self.log(f"internal error {type(e).__name__}: {e}")
                verdict = ("error", 1)
            if verdict[0] == "fd":
                _, fd, cloexec = verdict
                addfd = struct.pack("=QIIII", nid, ADDFD_SEND, fd, 0, cloexec)
                _libc.ioctl(self.fd, ADDFD, ctypes.create_string_buffer(addfd, 24))
                os.close(fd)
                continue
            val, err = (verdict[1], 0) if verdict[0] == "value" else (0, -verdict[1])
            resp = ctypes.create_string_buffer(struct.pack("=QqiI", nid, val, err, 0), 24)
            _libc.ioctl(self.fd, SEND, resp)


def main():
    argv = sys.argv[1:]
    off = "--off" in argv
    home = argv[argv.index("--home") + 1]
    cmd = argv[argv.index("--") + 1 :]
    parent_sock, child_sock = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        parent_sock.close()
        if not off:
            lfd = install_filter()
            socket.send_fds(child_sock, [b"x"], [lfd])
            os.close(lfd)
        child_sock.close()
        os.environ["HOME"] = home
        os.execvp(cmd[0], cmd)
    child_sock.close()
    if not off:
        _, fds, _, _ = socket.recv_fds(parent_sock, 1, 1)
        sup = Supervisor(
            fds[0], Policy(home), lambda m: print(f"protect_gate: {m}", file=sys.stderr)
        )
        import threading

        threading.Thread(target=sup.serve, daemon=True).start()
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()

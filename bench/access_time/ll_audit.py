"""Read Landlock's own denials (ABI 7, Linux 6.15+) from the kernel audit subsystem.

    ll_audit.py [--control] [PATH]   (root)

Reports the audit state, causes one Landlock denial in a child (reading PATH) and prints every
audit record that arrives (JSON); --control also gets a child killed by seccomp (a record of
type 1326, logged even with audit disabled).

How it reads: a NETLINK_AUDIT socket bound to the multicast group AUDIT_NLGRP_READLOG (1),
which needs CAP_AUDIT_READ and is read-only: it does not register as the audit daemon
(AUDIT_SET pid), so auditd, journald or nobody keeps that role.  The multicast copy is sent
by kauditd for every record, whether or not a daemon is registered.

What it never does: AUDIT_SET.  Landlock logs only while audit is enabled (audit_enabled != 0;
security/landlock/audit.c returns early otherwise).  Enabling it is not reversible in effect:
kernel/audit.c sets audit_ever_enabled |= 1, and from then on auditsc.c's audit_alloc()
gives every new task on the host an audit context (syscall entry/exit audit work) until the
next boot, even after audit is disabled again.  With no daemon registered, records also go to
the kernel log (printk).  So this script reports "audit disabled: no records" and leaves the
decision to the host's administrator (auditd, or audit=1 on the kernel command line).

Record formats (Documentation/admin-guide/LSM/landlock.rst, 6.15+):
  type 1423 AUDIT_LANDLOCK_ACCESS:  domain=195ba459b blockers=fs.read_file path="/etc/x"
                                    dev="vda" ino=1234
  type 1424 AUDIT_LANDLOCK_DOMAIN:  domain=195ba459b status=allocated mode=enforcing pid=300
                                    uid=0 exe="/usr/bin/cat" comm="cat"
                                    (after the domain's first logged denial, same event)
                                    domain=195ba459b status=deallocated denials=3
Each denial event also carries the SYSCALL / PROCTITLE records of the task when syscall audit
is active; records of one event share the serial in "audit(SECONDS.MILLIS:SERIAL)".
"""

import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

NETLINK_AUDIT = 9
AUDIT_GET = 1000
AUDIT_NLGRP_READLOG = 1
AUDIT_LANDLOCK_ACCESS = 1423
AUDIT_LANDLOCK_DOMAIN = 1424
NLM_F_REQUEST, NLM_F_ACK = 1, 4

LANDLOCK_ACCESS_FS_READ_FILE = 1 << 2
LANDLOCK_CREATE_RULESET_VERSION = 1
NR_CREATE_RULESET, NR_RESTRICT_SELF = 444, 446
# restrict_self flags (ABI 7): the default (0) logs denials of the same executable
LOG_SAME_EXEC_OFF, LOG_NEW_EXEC_ON, LOG_SUBDOMAINS_OFF = 1, 2, 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def audit_status():
    """AUDIT_GET: the kernel's audit state (enabled, the registered daemon's pid, ...)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        s.bind((0, 0))
        s.send(struct.pack("=IHHII", 16, AUDIT_GET, NLM_F_REQUEST | NLM_F_ACK, 1, 0))
        for _ in range(4):
            data = s.recv(8192)
            _, typ, _, _, _ = struct.unpack("=IHHII", data[:16])
            if typ == AUDIT_GET:
                names = "mask enabled failure pid rate_limit backlog_limit lost backlog"
                return dict(zip(names.split(), struct.unpack("=8I", data[16:48]), strict=False))
    finally:
        s.close()
    raise OSError("AUDIT_GET: no reply")


def readlog_socket():
    """The read-only multicast subscription (CAP_AUDIT_READ); never AUDIT_SET."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    s.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
    return s


def parse_records(data):
    """Netlink messages -> [(type, text)]."""
    out, off = [], 0
    while off + 16 <= len(data):
        ln, typ, _, _, _ = struct.unpack("=IHHII", data[off : off + 16])
        if ln < 16:
            break
        out.append((typ, data[off + 16 : off + ln].rstrip(b"\0").decode(errors="replace")))
        off += (ln + 3) & ~3
    return out


def parse_fields(text):
    """'audit(1.2:3): domain=1a blockers=fs.read_file path="/x" dev="vda" ino=5' -> dict."""
    fields = {}
    head, _, rest = text.partition(": ")
    fields["stamp"] = head
    for tok in rest.split(" "):
        k, eq, v = tok.partition("=")
        if eq:
            fields[k] = v.strip('"')
    return fields


def denied_child(path, flags, w):
    """Restrict itself with a ruleset that handles READ_FILE and grants nothing, then open."""
    attr = struct.pack("=QQQ", LANDLOCK_ACCESS_FS_READ_FILE, 0, 0)
    buf = ctypes.create_string_buffer(attr)
    rs = _libc.syscall(NR_CREATE_RULESET, buf, len(attr), 0)
    if rs < 0 or _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        os.write(w, b"setup failed")
        os._exit(1)
    if _libc.syscall(NR_RESTRICT_SELF, rs, flags) != 0:
        os.write(w, f"restrict_self errno {ctypes.get_errno()}".encode())
        os._exit(1)
    t = time.monotonic_ns()
    try:
        os.close(os.open(path, os.O_RDONLY))
        err = "opened"
    except OSError as e:
        err = os.strerror(e.errno)
    os.write(w, json.dumps({"t_ns": t, "result": err}).encode())
    os._exit(0)


def seccomp_killed_child():
    """Control: a seccomp RET_KILL_PROCESS is logged (type 1326) even with audit disabled, so
    an empty result below is Landlock's early return, not a deaf socket."""
    nr_getppid = 110
    prog = struct.pack("=HBBI", 0x20, 0, 0, 0)  # ld [nr]
    prog += struct.pack("=HBBI", 0x15, 0, 1, nr_getppid)  # jeq getppid
    prog += struct.pack("=HBBI", 0x06, 0, 0, 0x80000000)  # ret KILL_PROCESS
    prog += struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)  # ret ALLOW
    fbuf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("=HxxxxxxQ", 4, ctypes.addressof(fbuf))
    pbuf = ctypes.create_string_buffer(fprog)
    pid = os.fork()
    if pid == 0:
        _libc.prctl(38, 1, 0, 0, 0)
        _libc.prctl(22, 2, pbuf, 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        os.getppid()
        os._exit(0)
    os.waitpid(pid, 0)


def main():
    abi = _libc.syscall(NR_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    status = audit_status()
    sock = readlog_socket()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = args[0] if args else "/etc/hostname"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        denied_child(target, 0, w)
    os.close(w)
    os.waitpid(pid, 0)
    if "--control" in sys.argv:
        seccomp_killed_child()
    child = json.loads(os.read(r, 4096) or b"{}")
    records, first_ns = [], None
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        now = time.monotonic_ns()
        for typ, text in parse_records(sock.recv(65536)):
            if typ in (AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN) and first_ns is None:
                first_ns = now
            records.append({"type": typ, "text": text, "fields": parse_fields(text)})
    sock.close()
    after = audit_status()
    report = {
        "landlock_abi": abi,
        "audit_enabled": status["enabled"],
        "audit_daemon_pid": status["pid"],
        "child": child,
        "records": records,
        "other_records": sum(r["type"] not in (1423, 1424) for r in records),
        "landlock_records": sum(r["type"] in (1423, 1424) for r in records),
        "denial_to_record_us": (first_ns - child["t_ns"]) / 1000 if first_ns and child else None,
        "audit_state_unchanged": (status["enabled"], status["pid"])
        == (after["enabled"], after["pid"]),
    }
    if not status["enabled"]:
        report["note"] = (
            "audit is disabled: Landlock emits no records; enabling it (AUDIT_SET enabled=1) "
            "sets audit_ever_enabled until reboot, so this prototype does not"
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Landlock's own denials, as the kernel's audit subsystem reports them (Landlock ABI 7, 6.15+).

What this module does: asks the kernel whether audit is enabled (AUDIT_GET), opens the
read-only multicast subscription AUDIT_NLGRP_READLOG, and parses its records.  The
session's reader (sandbox.supervise.kaudit) turns them into decision events.

What it never does: AUDIT_SET.  Landlock logs only while the host's audit is enabled
(security/landlock/audit.c returns early otherwise), and turning audit on is not
reversible in effect (kernel/audit.c sets audit_ever_enabled until reboot, and every task
created afterwards gets an audit context), so it is the administrator's decision
(auditd, or audit=1 on the kernel command line), never landgate's.  Reading the
multicast group does not register as the audit daemon: auditd, journald or nobody keeps
that role.

Record formats (Documentation/admin-guide/LSM/landlock.rst):
  1423 AUDIT_LANDLOCK_ACCESS  domain=195ba459b blockers=fs.read_file path="/etc/x" dev="vda" ino=12
  1424 AUDIT_LANDLOCK_DOMAIN  domain=195ba459b status=allocated mode=enforcing pid=300 uid=0
                              exe="/usr/bin/cat" comm="cat"   (with the domain's first denial)
                              domain=195ba459b status=deallocated denials=3
A value the kernel cannot print quoted (a space, a quote, a control byte) is hex, unquoted.
"""

from __future__ import annotations

import os
import socket
import struct

from sandbox.record import Record

NETLINK_AUDIT = 9
AUDIT_GET = 1000
AUDIT_NLGRP_READLOG = 1
AUDIT_LANDLOCK_ACCESS = 1423
AUDIT_LANDLOCK_DOMAIN = 1424
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
_NLMSG_HDR = struct.Struct("=IHHII")
_AUDIT_STATUS_HEAD = struct.Struct("=8I")  # mask enabled failure pid rate_limit backlog_limit ...
LANDLOCK_LOG_ABI = 7  # LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON

NOT_ROOT = -1  # the state cannot be read: AUDIT_GET and the read group need root


def audit_enabled() -> int:
    """The host's audit state: 0 disabled, 1 enabled, 2 enabled and locked (AUDIT_GET).

    Needs CAP_AUDIT_CONTROL; raises OSError (naming the operation) when the kernel refuses or
    does not answer."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        s.settimeout(1.0)
        s.bind((0, 0))
        s.send(_NLMSG_HDR.pack(16, AUDIT_GET, NLM_F_REQUEST | NLM_F_ACK, 1, 0))
        for _ in range(4):
            data = s.recv(8192)
            for typ, payload in split_messages(data):
                if typ == NLMSG_ERROR and len(payload) >= 4:
                    err = -struct.unpack_from("=i", payload)[0]
                    if err:
                        raise OSError(err, f"audit netlink AUDIT_GET: {os.strerror(err)}")
                elif typ == AUDIT_GET and len(payload) >= _AUDIT_STATUS_HEAD.size:
                    return int(_AUDIT_STATUS_HEAD.unpack_from(payload)[1])
    except TimeoutError as exc:
        raise OSError(f"audit netlink AUDIT_GET: no reply ({exc})") from exc
    finally:
        s.close()
    raise OSError("audit netlink AUDIT_GET: no status in the reply")


def probe_audit_state(is_root: bool) -> int:
    """audit_enabled() for root, NOT_ROOT otherwise (and when the kernel refuses the query:
    a user namespace's root has no CAP_AUDIT_CONTROL in the initial namespace)."""
    if not is_root:
        return NOT_ROOT
    try:
        return audit_enabled()
    except OSError:
        return NOT_ROOT


def recording_gap(landlock_abi: int, audit_state: int) -> str | None:
    """Why the kernel's (Landlock's) denials cannot be recorded on this host, or None."""
    if landlock_abi < LANDLOCK_LOG_ABI:
        return (
            f"kernel file denials are not recorded: Landlock ABI {landlock_abi} has no audit "
            f"logging (ABI {LANDLOCK_LOG_ABI}, Linux 6.15)"
        )
    if audit_state == NOT_ROOT:
        return (
            "kernel file denials are not recorded: reading the host's audit records needs root "
            "(CAP_AUDIT_READ in the initial namespace)"
        )
    if audit_state == 0:
        return (
            "kernel file denials are not recorded: host audit is disabled "
            "(landgate never enables it)"
        )
    return None


def readlog_socket(rcvbuf: int = 4 << 20) -> socket.socket:
    """The read-only multicast subscription (CAP_AUDIT_READ); never AUDIT_SET.

    A large receive buffer (SO_RCVBUFFORCE, root) so that a burst of denials is not lost
    while the reader thread waits for the GIL; a loss is reported, not hidden (ENOBUFS)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
    try:
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
    except OSError as exc:
        s.close()
        raise OSError(exc.errno, f"audit netlink bind AUDIT_NLGRP_READLOG: {exc.strerror}") from exc
    return s


def split_messages(data: bytes) -> list[tuple[int, bytes]]:
    """Netlink messages -> [(type, payload)]."""
    out: list[tuple[int, bytes]] = []
    off = 0
    while off + _NLMSG_HDR.size <= len(data):
        ln, typ, _, _, _ = _NLMSG_HDR.unpack_from(data, off)
        if ln < _NLMSG_HDR.size or off + ln > len(data):
            break
        out.append((typ, data[off + _NLMSG_HDR.size : off + ln]))
        off += (ln + 3) & ~3
    return out


def _value(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1]
    # audit_log_untrustedstring: a value with a space, quote or control byte is hex
    if raw and len(raw) % 2 == 0 and all(c in "0123456789ABCDEFabcdef" for c in raw):
        try:
            return bytes.fromhex(raw).decode("utf-8", "surrogateescape")
        except ValueError:
            return raw
    return raw


def parse_fields(text: str) -> tuple[str, dict[str, str]]:
    """'audit(1.2:3): domain=1a path="/x" ino=5' -> ('1.2:3', {'domain': '1a', ...}).

    Numbers stay text (ino=5 is not hex-decoded: only values that the caller knows to be
    strings go through `_value`)."""
    head, _, rest = text.partition(": ")
    stamp = head[len("audit(") : -1] if head.startswith("audit(") and head.endswith(")") else ""
    fields: dict[str, str] = {}
    for tok in rest.split():
        key, eq, val = tok.partition("=")
        if eq:
            fields[key] = val
    return stamp, fields


class LandlockAccess(Record):
    """One AUDIT_LANDLOCK_ACCESS record: what one Landlock domain refused."""

    serial: str  # "SECONDS.MILLIS:SERIAL"
    ts: float
    domain: str
    blockers: tuple[str, ...]  # fs.read_file, fs.write_file, net.connect_tcp, scope.signal ...
    path: str | None  # the object's path as the kernel printed it (None: no path field)
    dev: str | None
    ino: str | None
    detail: str  # the other fields (opid/ocomm of a signal target, daddr/dest of a connect)


class LandlockDomain(Record):
    """One AUDIT_LANDLOCK_DOMAIN record: a domain's first denial, or its end."""

    serial: str
    domain: str
    status: str  # allocated | deallocated
    pid: int  # the process that created the domain (allocated records; 0 otherwise)
    exe: str | None
    denials: int | None  # deallocated records


def _stamp_time(stamp: str) -> float:
    try:
        return float(stamp.partition(":")[0])
    except ValueError:
        return 0.0


def parse_record(typ: int, payload: bytes) -> LandlockAccess | LandlockDomain | None:
    """A Landlock record, or None for any other record (or one without a domain)."""
    if typ not in (AUDIT_LANDLOCK_ACCESS, AUDIT_LANDLOCK_DOMAIN):
        return None
    text = payload.rstrip(b"\0").decode("utf-8", "replace")
    stamp, f = parse_fields(text)
    domain = f.get("domain")
    if not domain:
        return None
    if typ == AUDIT_LANDLOCK_DOMAIN:
        pid = f.get("pid", "0")
        denials = f.get("denials")
        return LandlockDomain(
            serial=stamp,
            domain=domain,
            status=f.get("status", ""),
            pid=int(pid) if pid.isdigit() else 0,
            exe=_value(f["exe"]) if "exe" in f else None,
            denials=int(denials) if denials is not None and denials.isdigit() else None,
        )
    known = {"domain", "blockers", "path", "dev", "ino", "name"}
    path = f.get("path", f.get("name"))
    return LandlockAccess(
        serial=stamp,
        ts=_stamp_time(stamp),
        domain=domain,
        blockers=tuple(b for b in f.get("blockers", "").split(",") if b),
        path=None if path is None else _value(path),
        dev=None if "dev" not in f else _value(f["dev"]),
        ino=f.get("ino"),
        detail=" ".join(f"{k}={v}" for k, v in f.items() if k not in known),
    )

"""One root per session for the open check and the unix-socket paths (supervise_caller.c
lg_session_root): absolute names are walked from the root kept at the session's first
notification that needed it, not from each caller's /proc/TID/root.

The attack is a caller in another root (chroot), where a name the policy allows leads to a
denied object.  What a wrong root can do depends on who walks the name last:

- a datagram to a unix socket whose name nobody can re-aim is sent by the kernel (the
  syscall continues), which walks the name again from the caller's own root.  Judged from
  the session's root, a chroot'd caller would send to the jail's socket that was never
  judged.  Sound only because the filter refuses chroot (the premise): these tests fail
  with chroot let through (spawn --allow-chroot) and the session's root used;
- the open check and a unix connect act on the object the supervisor walked (the fd it
  hands over, the socket file it connects through), never on the caller's name again.
  A caller in another root gets the session root's object, judged, never the jail's: the
  premise-broken tests below show the denied object stays out even with chroot let
  through.  They would fail if either path ever let the kernel walk the name again after
  judging it from the session's root (as exec's and sendto's fast paths do).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from conftest import require_kernel

from sandbox.host.probe import probe_host
from sandbox.policy.model import PathPattern

from .conftest import dest, make_policy

pytestmark = pytest.mark.kernel

ENV = PathPattern(raw="**/.env", glob=".env", anchored=False, directory=False, base=None)


@pytest.fixture(autouse=True)
def _kernel():
    h = probe_host()
    require_kernel(h.seccomp_notify, "seccomp user notification")
    require_kernel(os.geteuid() == 0, "root: the jail is entered with chroot")


def in_jail(jail: Path, p: Path) -> Path:
    """p's counterpart inside the jail (its absolute name, below the jail)."""
    return jail / str(p).lstrip("/")


# ---- the open check ----------------------------------------------------------------


@pytest.fixture
def conf(world) -> tuple[Path, Path]:
    """W/data/conf, allowed, in the session's root; in the jail the same name is a link
    to a denied .env holding the secret."""
    data = world.root / "data"
    data.mkdir()
    (data / "conf").write_text("session-conf\n")
    jail = world.root / "jail"
    jd = in_jail(jail, data)
    jd.mkdir(parents=True)
    (jd / ".env").write_bytes(world.secret + b"\n")
    (jd / "conf").symlink_to(".env")
    return jail, data / "conf"


def test_open_in_a_refused_chroot_is_the_session_roots(supervised, conf, bins, world):
    """The filter refuses chroot (the premise): the absolute name is the session root's
    object, allowed (the twin of the denial below)."""
    jail, name = conf
    pol = make_policy(file_rules=[("file_read", ENV, "deny")])
    r = supervised([str(bins / "chroot_do"), str(jail), "open", str(name)], pol, open_check=True)
    assert b"chroot Operation not permitted" in r.stdout, r.stdout
    assert b"open ok: session-conf" in r.stdout, r.stdout
    assert world.secret not in r.stdout
    assert r.decisions("file_read") == []  # an allowed open is not recorded; no denial


def test_the_jails_link_named_from_the_session_root_is_denied(supervised, conf, bins, world):
    jail, name = conf
    pol = make_policy(file_rules=[("file_read", ENV, "deny")])
    link = in_jail(jail, name)
    r = supervised([str(bins / "chroot_do"), str(jail), "open", str(link)], pol, open_check=True)
    assert b"open Permission denied" in r.stdout, r.stdout
    assert world.secret not in r.stdout
    assert (str(link), "deny") in r.decisions("file_read")


def test_open_check_keeps_a_chrooted_caller_from_the_jails_denied_file(
    supervised, conf, bins, world
):
    """The premise broken on purpose (chroot let through): the caller is in the jail, where
    its name leads to the denied .env.  The open check walks the name from the session's
    root and hands over that object, judged: the secret never comes through."""
    jail, name = conf
    pol = make_policy(file_rules=[("file_read", ENV, "deny")])
    r = supervised(
        [str(bins / "chroot_do"), str(jail), "open", str(name)],
        pol,
        open_check=True,
        spawn_flags=["--allow-chroot"],
    )
    assert b"chroot ok" in r.stdout, r.stdout
    assert world.secret not in r.stdout
    # what it got is what was judged: the session root's allowed file
    assert b"open ok: session-conf" in r.stdout, r.stdout
    assert r.decisions("file_read") == []


def test_unsupervised_chrooted_open_reaches_the_jails_file(supervised, conf, bins, world):
    """The twin that shows the test above can fail: without the open check the kernel
    opens the name in the jail, and the secret comes through."""
    jail, name = conf
    pol = make_policy(file_rules=[("file_read", ENV, "deny")])
    r = supervised(
        [str(bins / "chroot_do"), str(jail), "open", str(name)],
        pol,
        spawn_flags=["--allow-chroot"],
    )
    assert b"chroot ok" in r.stdout, r.stdout
    assert world.secret in r.stdout


# ---- unix sockets -------------------------------------------------------------------


class Sockets:
    """An allowed socket at W/sock/ok.sock in the session's root, and a socket of the same
    name in the jail whose real path no rule allows."""

    def __init__(self, world, kind: int) -> None:
        d = world.root / "sock"
        d.mkdir()
        self.jail = world.root / "jail"
        jd = in_jail(self.jail, d)
        jd.mkdir(parents=True)
        self.name = d / "ok.sock"
        self.jail_name = jd / "ok.sock"
        self.ok = self._bind(self.name, kind)
        self.denied = self._bind(self.jail_name, kind)
        self.ws = world.root / "ws"
        self.ws.mkdir()

    @staticmethod
    def _bind(p: Path, kind: int) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, kind)
        s.bind(str(p))
        os.chmod(p, 0o777)
        if kind == socket.SOCK_STREAM:
            s.listen(4)
        s.setblocking(False)
        return s

    def policy(self):
        glob = str(self.name)
        return make_policy(net_rules=[(dest(f"unix:{glob}", "unix", unix_glob=glob), "allow")])

    def got(self, s: socket.socket) -> bytes:
        try:
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.settimeout(5)
                with c:
                    return c.recv(100)
            return s.recv(100)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        self.ok.close()
        self.denied.close()


@pytest.fixture
def dgram(world):
    s = Sockets(world, socket.SOCK_DGRAM)
    yield s
    s.close()


@pytest.fixture
def stream(world):
    s = Sockets(world, socket.SOCK_STREAM)
    yield s
    s.close()


def test_sendto_in_a_refused_chroot_reaches_the_session_roots_socket(supervised, dgram, bins):
    """The attack: chroot into the jail, send to the allowed name.  The name is out of the
    agent's reach, so the supervisor lets the kernel send (it walks the name again).  The
    filter refuses chroot, so the kernel's walk is from the session's root too: the
    allowed socket gets the datagram, the jail's nothing.  (With chroot let through, this
    test fails: the jail's socket, never judged, gets it.)"""
    r = supervised(
        [str(bins / "chroot_do"), str(dgram.jail), "sendto", str(dgram.name), "hello"],
        dgram.policy(),
        plan_info={"write_trees": [str(dgram.ws)]},
    )
    assert b"chroot Operation not permitted" in r.stdout, r.stdout
    assert b"sendto ok" in r.stdout, r.stdout
    assert dgram.got(dgram.denied) == b""
    assert dgram.got(dgram.ok) == b"hello"  # the allowed twin
    ev = [e for e in r.events if e.action == "network"]
    assert ev and ev[0].result == "allow" and "forwarded" not in ev[0].flags


def test_sendto_the_jails_socket_by_its_real_name_is_denied(supervised, dgram, bins):
    r = supervised(
        [str(bins / "chroot_do"), str(dgram.jail), "sendto", str(dgram.jail_name), "hello"],
        dgram.policy(),
        plan_info={"write_trees": [str(dgram.ws)]},
    )
    assert b"sendto Connection refused" in r.stdout, r.stdout
    assert dgram.got(dgram.denied) == b""
    assert (f"unix:{dgram.jail_name}", "deny") in r.decisions("network")


def test_connect_keeps_a_chrooted_caller_from_the_jails_socket(supervised, stream, bins):
    """The premise broken on purpose (chroot let through): a connect is made by the
    supervisor through the socket file it walked and judged, the session root's; the
    jail's socket, which no rule allows, gets nothing."""
    r = supervised(
        [str(bins / "chroot_do"), str(stream.jail), "connect", str(stream.name), "hello"],
        stream.policy(),
        plan_info={"write_trees": [str(stream.ws)]},
        spawn_flags=["--allow-chroot"],
    )
    assert b"chroot ok" in r.stdout, r.stdout
    assert stream.got(stream.denied) == b""
    assert stream.got(stream.ok) == b"hello"
    assert (f"unix:{stream.name}", "allow") in r.decisions("network")

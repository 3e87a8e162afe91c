"""connect / sendto decisions on the real kernel: allowed/denied twins, asserting on what the
servers got."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time

import pytest
from conftest import RecordingServer, scaled

from .conftest import dest, make_policy

PY = "/usr/bin/python3"
THREAD = 'threading.Thread(target=lambda: __import__("time").sleep(2), daemon=True).start()'


def port_rule(port: int, effect: str = "allow", host: str = "127.0.0.1"):
    net = ipaddress.ip_network(host)
    return (dest(f"{host}:{port}", "ip", network=net, port=port), effect)


CONNECT = """
import socket, sys, errno
def attempt(port, data, fam=socket.AF_INET, host='127.0.0.1'):
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.connect((host, port))
        s.sendall(data)
        s.recv(16)
        print('connected', port)
    except OSError as e:
        print('refused', port, errno.errorcode.get(e.errno))
    finally:
        s.close()
"""


def wait_for(cond, timeout=3.0):
    end = time.monotonic() + scaled(timeout)  # a slow (emulated) machine waits longer
    while time.monotonic() < end and not cond():
        time.sleep(0.02)


def test_connect_allowed_vs_denied_port(supervised, world):
    ok, bad = world.allowed_server, world.denied_server
    code = (
        CONNECT + f"attempt({ok.port}, b'hello-allowed')\nattempt({bad.port}, {world.secret!r})\n"
    )
    pol = make_policy(net_rules=[port_rule(ok.port)])
    r = supervised([PY, "-c", code], pol)
    out = r.stdout.decode()
    assert f"connected {ok.port}" in out
    assert f"refused {bad.port} ECONNREFUSED" in out
    wait_for(lambda: b"hello-allowed" in ok.received)
    assert b"hello-allowed" in ok.received
    assert bad.connections == 0 and world.secret not in bad.received
    assert f'landgate: denied network "127.0.0.1:{bad.port}"'.encode() in r.stderr
    assert (f"127.0.0.1:{bad.port}", "deny") in r.decisions("network")
    assert (f"127.0.0.1:{ok.port}", "allow") in r.decisions("network")


def test_localhost_rule_and_pinned_names(supervised, world):
    ok, bad = world.allowed_server, world.denied_server
    code = CONNECT + f"attempt({ok.port}, b'x')\nattempt({bad.port}, b'y')\n"
    pol = make_policy(
        net_rules=[(dest(f"localhost:{ok.port}", "localhost", port=ok.port), "allow")]
    )
    r = supervised([PY, "-c", code], pol)
    assert f"connected {ok.port}".encode() in r.stdout and bad.connections == 0
    # a host-name rule judged by the names the DNS view mapped to the address
    pol2 = make_policy(
        net_rules=[
            (
                dest(f"api.example.test:{ok.port}", "host", host="api.example.test", port=ok.port),
                "allow",
            )
        ]
    )
    r2 = supervised([PY, "-c", code], pol2, names={"127.0.0.1": ("api.example.test",)})
    assert f"connected {ok.port}".encode() in r2.stdout and bad.connections == 0
    ev = [e for e in r2.events if e.result == "allow" and e.action == "network"]
    assert ev and ev[0].detail == "api.example.test"


def test_connect_address_swap_race(supervised, world, bins):
    ok, bad = world.allowed_server, world.denied_server
    pol = make_policy(net_rules=[port_rule(ok.port)])
    r = supervised([str(bins / "conn_race"), "300", str(ok.port), str(bad.port)], pol, timeout=120)
    n, connected, _refused = map(int, r.stdout.split())
    assert n == 300 and connected > 0
    # The recording server accepts in its own thread: wait until it has counted every
    # connection the client saw succeed (under QEMU's TCG that takes seconds, not 0.3 s).
    wait_for(lambda: ok.connections >= connected, timeout=scaled(3.0))
    assert bad.connections == 0  # the supervisor connected its own copy of the address
    assert ok.connections == connected


def test_ipv6_loopback(supervised, world):
    ok6, bad6 = RecordingServer("::1"), RecordingServer("::1")
    try:
        code = CONNECT + (
            f"attempt({ok6.port}, b'v6-ok', socket.AF_INET6, '::1')\n"
            f"attempt({bad6.port}, b'v6-bad', socket.AF_INET6, '::1')\n"
        )
        pol = make_policy(net_rules=[port_rule(ok6.port, host="::1")])
        r = supervised([PY, "-c", code], pol)
        assert f"connected {ok6.port}".encode() in r.stdout
        assert f"refused {bad6.port} ECONNREFUSED".encode() in r.stdout
        wait_for(lambda: ok6.connections > 0)
        assert ok6.connections == 1 and bad6.connections == 0
        assert (f"[::1]:{bad6.port}", "deny") in r.decisions("network")
    finally:
        ok6.close()
        bad6.close()


def test_v4_mapped_v6_judged_as_v4(supervised, world):
    ok, bad = world.allowed_server, world.denied_server
    code = CONNECT + f"attempt({bad.port}, b'mapped', socket.AF_INET6, '::ffff:127.0.0.1')\n"
    pol = make_policy(net_rules=[port_rule(ok.port)])
    r = supervised([PY, "-c", code], pol)
    assert b"refused" in r.stdout and bad.connections == 0


def test_nonblocking_connect(supervised, world):
    ok, bad = world.allowed_server, world.denied_server
    code = f"""
import socket, select, errno
for port in ({ok.port}, {bad.port}):
    s = socket.socket(); s.setblocking(False)
    rc = s.connect_ex(('127.0.0.1', port))
    if rc == errno.EINPROGRESS:
        select.select([], [s], [], 5)
        rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    print(port, errno.errorcode.get(rc, rc))
    if rc == 0: s.send(b'nb-ok')
    s.close()
"""
    pol = make_policy(net_rules=[port_rule(ok.port)])
    r = supervised([PY, "-c", code], pol)
    out = r.stdout.decode()
    assert f"{ok.port} 0" in out or f"{ok.port} EINPROGRESS" in out
    assert f"{bad.port} ECONNREFUSED" in out
    wait_for(lambda: b"nb-ok" in ok.received)
    assert b"nb-ok" in ok.received and bad.connections == 0


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def _recv_all(s: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(s.recv(65536))
        except TimeoutError:
            return got


@pytest.mark.parametrize("threaded", [False, True], ids=["single-threaded", "threaded-forwarded"])
def test_udp_sendto_denied_port_receives_nothing(supervised, world, threaded):
    ok, bad = _udp(), _udp()
    try:
        pok, pbad = ok.getsockname()[1], bad.getsockname()[1]
        code = f"""
import socket, threading, errno
{THREAD if threaded else ""}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port, data in (({pok}, b'udp-ok'), ({pbad}, {world.secret!r})):
    try:
        s.sendto(data, ('127.0.0.1', port)); print('sent', port)
    except OSError as e:
        print('refused', port, errno.errorcode.get(e.errno))
"""
        pol = make_policy(net_rules=[port_rule(pok)])
        r = supervised([PY, "-c", code], pol)
        assert f"sent {pok}".encode() in r.stdout
        assert f"refused {pbad} ECONNREFUSED".encode() in r.stdout
        assert _recv_all(ok) == [b"udp-ok"]
        assert _recv_all(bad) == []
        if threaded:
            assert any("forwarded" in e.flags for e in r.events if e.result == "allow")
    finally:
        ok.close()
        bad.close()


def test_unix_socket_outside_denied_allowed_path_works(supervised, world):
    inside = world.workspace / "ok.sock"
    outside = world.root / "outside.sock"
    servers = []
    got: dict[str, bytes] = {}
    for p in (inside, outside):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(p))
        srv.listen(8)
        os.chmod(p, 0o777)
        servers.append(srv)

        def serve(srv=srv, key=str(p)):
            try:
                c, _ = srv.accept()
                got[key] = c.recv(100)
                c.close()
            except OSError:
                pass

        threading.Thread(target=serve, daemon=True).start()
    code = f"""
import socket, os, errno
os.chdir({str(world.workspace)!r})
for path, data in (('ok.sock', b'unix-ok'), ({str(outside)!r}, {world.secret!r})):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path); s.sendall(data); print('connected', path)
    except OSError as e:
        print('refused', path, errno.errorcode.get(e.errno))
    s.close()
"""
    pol = make_policy(
        net_rules=[
            (
                dest(
                    f"unix:{world.workspace}/*.sock", "unix", unix_glob=f"{world.workspace}/*.sock"
                ),
                "allow",
            )
        ]
    )
    try:
        r = supervised([PY, "-c", code], pol)
        assert b"connected ok.sock" in r.stdout
        assert f"refused {outside} ECONNREFUSED".encode() in r.stdout
        wait_for(lambda: str(inside) in got)
        assert got.get(str(inside)) == b"unix-ok"
        assert str(outside) not in got
        assert (f"unix:{outside}", "deny") in r.decisions("network")
    finally:
        for s in servers:
            s.close()


def test_unix_connect_keeps_callers_permissions(supervised, world, tmp_path_factory):
    # the supervisor connects as root; the kernel's permission check must stay the caller's
    p = world.root / "private.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(p))
    srv.listen(1)
    os.chmod(p, 0o700)
    code = f"""
import socket, os, errno
os.setgid(65534); os.setgroups([]); os.setuid(65534)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect({str(p)!r}); print('connected')
except OSError as e:
    print('refused', errno.errorcode.get(e.errno))
"""
    pol = make_policy(net_rules=[(dest("unix:/**", "unix", unix_glob="/**"), "allow")])
    try:
        r = supervised([PY, "-c", code], pol)
        assert b"refused EACCES" in r.stdout
    finally:
        srv.close()


@pytest.mark.parametrize("n", [1, 64, 65, 200])
def test_sendmmsg_every_destination_judged(supervised, world, bins, n):
    # the denied destination last in a batch of n: nothing of the batch is delivered (a batch
    # over 64 used to be judged by its first 64 destinations only, then sent whole)
    ok, bad = _udp(), _udp()
    try:
        pok, pbad = ok.getsockname()[1], bad.getsockname()[1]
        pol = make_policy(net_rules=[port_rule(pok)])
        r = supervised([str(bins / "mmsg"), str(n), str(pok), str(pbad)], pol)
        assert r.stdout.strip() == b"refused 111"  # ECONNREFUSED, for the whole call
        assert _recv_all(bad) == []
        assert _recv_all(ok) == []  # none of the batch left
        # twin: the same batch, every destination allowed, all delivered
        r2 = supervised([str(bins / "mmsg"), str(n), str(pok), str(pok)], pol)
        assert r2.stdout.strip() == f"sent {n}".encode()
        assert sorted(_recv_all(ok)) == sorted(f"m{i}".encode() for i in range(n))
    finally:
        ok.close()
        bad.close()


def test_unix_hard_link_to_denied_socket_refused(supervised, world):
    # a host socket outside the allowed paths, hard-linked into an allowed directory: the
    # link's name is allowed, the object is the denied socket (refused); twin: the allowed
    # socket itself, a file of its own, works
    outside = world.root / "agent.sock"
    inside = world.workspace / "ok.sock"
    alias = world.workspace / "alias.sock"
    servers = []
    got: dict[str, bytes] = {}
    for p in (inside, outside):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(p))
        srv.listen(8)
        os.chmod(p, 0o777)
        servers.append(srv)

        def serve(srv=srv, key=str(p)):
            while True:
                try:
                    c, _ = srv.accept()
                    got[key] = got.get(key, b"") + c.recv(100)
                    c.close()
                except OSError:
                    return

        threading.Thread(target=serve, daemon=True).start()
    os.link(outside, alias)
    code = f"""
import socket, errno
for path, data in (({str(inside)!r}, b'unix-ok'), ({str(alias)!r}, {world.secret!r})):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path); s.sendall(data); print('connected', path)
    except OSError as e:
        print('refused', path, errno.errorcode.get(e.errno))
    s.close()
"""
    glob = f"{world.workspace}/*.sock"
    pol = make_policy(net_rules=[(dest(f"unix:{glob}", "unix", unix_glob=glob), "allow")])
    try:
        r = supervised([PY, "-c", code], pol)
        assert f"connected {inside}".encode() in r.stdout
        assert f"refused {alias} ECONNREFUSED".encode() in r.stdout
        wait_for(lambda: str(inside) in got)
        assert got.get(str(inside)) == b"unix-ok"
        time.sleep(0.2)
        assert str(outside) not in got
    finally:
        for s in servers:
            s.close()


def test_simulation_keeps_denied_tcp_and_unix_refused(supervised, world):
    # simulate records a would-deny, and the denied egress stays refused (TCP and unix);
    # twins: the allowed port and the allowed socket are reached
    ok, bad = world.allowed_server, world.denied_server
    outside = world.root / "host.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(outside))
    srv.listen(8)
    os.chmod(outside, 0o777)
    got: list[bytes] = []

    def serve() -> None:
        try:
            c, _ = srv.accept()
            got.append(c.recv(100))
            c.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    code = (
        CONNECT
        + f"attempt({ok.port}, b'sim-allowed')\nattempt({bad.port}, {world.secret!r})\n"
        + f"""
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    u.connect({str(outside)!r}); u.sendall({world.secret!r}); print('unix connected')
except OSError as e:
    print('unix refused', errno.errorcode.get(e.errno))
"""
    )
    pol = make_policy(net_rules=[port_rule(ok.port)], mode="simulate")
    try:
        r = supervised([PY, "-c", code], pol, simulate=True)
        out = r.stdout.decode()
        assert f"connected {ok.port}" in out
        assert f"refused {bad.port} ECONNREFUSED" in out and "unix refused ECONNREFUSED" in out
        wait_for(lambda: b"sim-allowed" in ok.received)
        assert bad.connections == 0 and world.secret not in bad.received
        time.sleep(0.2)
        assert got == []
        denied = [e for e in r.events if e.action == "network" and e.result == "deny"]
        assert {e.target for e in denied} == {f"127.0.0.1:{bad.port}", f"unix:{outside}"}
        assert all("simulated" in e.flags for e in denied)  # recorded as would-deny
    finally:
        srv.close()


def test_thread_with_its_own_fd_table_never_connects_the_leaders_socket(supervised, world):
    """The supervisor connects a duplicate of the *calling thread's* socket.  Before 6.9
    (no PIDFD_THREAD) it takes the fd from the thread-group leader's table, which is the
    caller's only while they share it: here a thread unshares its fd table and puts its own
    socket at the number where the leader holds another.  The leader's socket must never
    be connected; with PIDFD_THREAD the thread's connect works, without it the kcmp check
    refuses it (EBADF) rather than act on the leader's socket."""
    from sandbox.host.probe import probe_host

    ok = world.allowed_server
    code = f"""
import ctypes, errno, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
leader = socket.socket()          # the leader's socket at fd n
n = leader.fileno()
out = {{}}
def body():
    if libc.unshare(0x400) != 0:  # CLONE_FILES: this thread's own copy of the table
        out["thread"] = "unshare-" + errno.errorcode[ctypes.get_errno()]
        return
    mine = socket.socket()
    os.dup2(mine.fileno(), n)     # fd n is now the thread's own socket, in its table only
    mine.close()
    s = socket.socket(fileno=n)
    try:
        s.connect(("127.0.0.1", {ok.port}))
        out["thread"] = "connected"
    except OSError as e:
        out["thread"] = "refused-" + errno.errorcode.get(e.errno, str(e.errno))
    s.close()
t = threading.Thread(target=body)
t.start()
t.join()
try:
    leader.getpeername()
    out["leader"] = "connected"
except OSError as e:
    out["leader"] = errno.errorcode.get(e.errno, str(e.errno))
print(out["thread"], out["leader"])
"""
    r = supervised([PY, "-c", code], make_policy(net_rules=[port_rule(ok.port)]))
    thread, leader = r.stdout.decode().split()
    assert leader == "ENOTCONN", r.stdout  # never the leader's socket
    if probe_host().pidfd_thread:
        assert thread == "connected"  # the allowed twin: the thread's own socket
        wait_for(lambda: ok.connections == 1)
        assert ok.connections == 1
    else:
        assert thread == "refused-EBADF"
        time.sleep(0.2)
        assert ok.connections == 0


def _unix_dgram(path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    os.chmod(path, 0o777)
    s.setblocking(False)
    return s


def _drain(s: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(s.recv(100))
        except BlockingIOError:
            return out


@pytest.mark.parametrize("how", ["sendto", "sendmmsg"])
def test_unix_datagram_to_hard_link_of_denied_socket_refused(supervised, world, bins, how):
    # sendto/sendmsg and every sendmmsg destination are judged by the socket file reached: a
    # host socket hard-linked into the allowed directory is refused; twin: the allowed socket
    # itself receives (sendmmsg: a batch of 3, the alias last, then all to the allowed one)
    ok_path = world.workspace / "ok.sock"
    host_path = world.root / "host.sock"
    alias = world.workspace / "alias.sock"
    ok, host = _unix_dgram(ok_path), _unix_dgram(host_path)
    os.link(host_path, alias)
    glob = f"{world.workspace}/*.sock"
    pol = make_policy(net_rules=[(dest(f"unix:{glob}", "unix", unix_glob=glob), "allow")])
    ws = {"write_trees": [str(world.workspace)]}
    try:
        if how == "sendto":
            code = f"""
import socket, errno
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for path, data in (({str(ok_path)!r}, b'dgram-ok'), ({str(alias)!r}, {world.secret!r})):
    try:
        s.sendto(data, path); print('sent', path)
    except OSError as e:
        print('refused', path, errno.errorcode.get(e.errno))
"""
            r = supervised([PY, "-c", code], pol, plan_info=ws)
            assert f"sent {ok_path}".encode() in r.stdout
            assert f"refused {alias} ECONNREFUSED".encode() in r.stdout
            assert _drain(ok) == [b"dgram-ok"]
        else:
            r = supervised([str(bins / "umsg"), "3", str(ok_path), str(alias)], pol, plan_info=ws)
            assert r.stdout.strip() == b"refused 111"
            assert _drain(ok) == []  # none of the batch left
            r2 = supervised(
                [str(bins / "umsg"), "3", str(ok_path), str(ok_path)], pol, plan_info=ws
            )
            # the allowed socket sits in a writable tree: its name could be re-aimed
            # between the check and the kernel's walk, so the batch is refused too
            assert r2.stdout.strip() == b"refused 1"
            assert _drain(ok) == []
        assert _drain(host) == []  # the host socket got nothing
    finally:
        ok.close()
        host.close()


def test_unix_sendmmsg_to_a_stable_name_is_delivered(supervised, world, bins):
    # the twin of the racy-name refusal: a socket outside every writable tree receives the
    # whole batch (the kernel's walk cannot find another file)
    ro = world.root / "ro"
    ro.mkdir()
    ok_path = ro / "ok.sock"
    ok = _unix_dgram(ok_path)
    pol = make_policy(net_rules=[(dest(f"unix:{ro}/*", "unix", unix_glob=f"{ro}/*"), "allow")])
    try:
        r = supervised(
            [str(bins / "umsg"), "3", str(ok_path), str(ok_path)],
            pol,
            plan_info={"write_trees": [str(world.workspace)]},
        )
        assert r.stdout.strip() == b"sent 3"
        assert sorted(_drain(ok)) == [b"m0", b"m1", b"m2"]
    finally:
        ok.close()

"""The loopback-only layer on the unprivileged rung: landgate as nobody, no tun device.

Split from test_loopback_only.py (the root rung's layer, whose attack code and leak
check this file reuses).  The control: nobody without the namespace reaches the fake
internet with the same attacks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import require_kernel, require_root, scaled

from sandbox.host.network import LOOPBACK_ONLY_LAYER

from .conftest import ADDRS, FakeInet, wait_for
from .test_loopback_only import ATTACKS, _leaks

# The unprivileged rung's kernel layer alone: landgate as nobody prepares the session, a
# child makes its user + network namespace as the launcher does (LG_NS_NET), attach()
# has the helper bring `lo` up and hand over the DNS view's sockets, then the child runs
# the attacks.  No supervisor: only the namespace stands between them and the fake internet.
AS_NOBODY = r"""
import ctypes, json, os, sys
from pathlib import Path
from sandbox.net import NetworkSession
from sandbox.net.dnsview import Upstream
from sandbox.policy import load_policy_text
attacks, dns = sys.argv[1], sys.argv[2]
events = []
ns = NetworkSession(load_policy_text("version: 1\n", source="p.yaml", cwd=Path("/tmp")),
                    on_event=events.append, upstream=Upstream(dns))
setup = ns.prepare()
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
out_r, out_w = os.pipe()
pid = os.fork()
if pid == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000 | 0x40000000) != 0:
        os._exit(3)
    os.write(ready_w, b"x")
    os.read(go_r, 1)
    os.dup2(out_w, 1)
    os.execv(sys.executable, [sys.executable, "-c", attacks])
os.read(ready_r, 1)
ns.attach(pid)
os.write(go_w, b"x")
os.close(out_w)
out = b""
while chunk := os.read(out_r, 65536):
    out += chunk
os.waitpid(pid, 0)
ns.close()
print(json.dumps({"rung": setup.rung, "layer": setup.layer, "out": json.loads(out),
                  "dns_denied": [e.target for e in events if e.result == "deny"]}))
"""

VIEW_QUERY = """
def view():
    q = DNSRecord.question("exfil.test").pack()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(q, ("127.0.0.1", 53))
    out["view"] = "rcode%d" % DNSRecord.parse(s.recv(512)).header.rcode
view()
print(json.dumps(out))
"""


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(
        [*nobody, sys.executable, "-c", code, *args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
        cwd="/tmp",
    )


def test_unprivileged_loopback_only_namespace_stops_every_attack(
    fake_inet: FakeInet, tun_root_only: None
) -> None:
    """Without the tun device pasta needs: nobody still gets the loopback-only namespace."""
    require_root()
    from sandbox.host.probe import probe_host

    from .conftest import nobody_rung

    del tun_root_only
    require_kernel(probe_host().user_ns, "unprivileged user namespaces")
    attacks = ATTACKS.replace("print(json.dumps(out))\n", "") + VIEW_QUERY
    mark = fake_inet.mark()
    p = _as_nobody(AS_NOBODY, attacks, ADDRS["dns"])
    assert p.returncode == 0, (p.stdout, p.stderr)
    got = json.loads(p.stdout)
    assert got["rung"] == "userns" and got["layer"] == LOOPBACK_ONLY_LAYER, got
    # A raw socket: the exec'd child (a non-root uid) kept no CAP_NET_RAW; had it, no route.
    assert got["out"].pop("raw") in ("EPERM", "ENETUNREACH"), got
    assert got["out"] == {
        "tcp4": "ENETUNREACH",
        "tcp6": "ENETUNREACH",
        "udp": "ENETUNREACH",
        "dns": "ENETUNREACH",
        "links": ["lo"],
        "view": "rcode3",  # NXDOMAIN from the DNS view on the sandbox's own 127.0.0.1:53
    }, got
    assert got["dns_denied"] == ["exfil.test"]
    assert not wait_for(lambda: _leaks(fake_inet, mark), timeout=1)
    # The control: nobody without the namespace reaches the fake internet (raw sockets
    # need CAP_NET_RAW, which nobody has only inside its own user namespace).
    assert nobody_rung().stdout.split("\n")[0] == "connect-only"  # no tun: no full rung
    mark = fake_inet.mark()
    ctl = _as_nobody(ATTACKS)
    outside = json.loads(ctl.stdout)
    assert all(outside[k] == "reached" for k in ("tcp4", "tcp6", "udp", "dns")), outside
    assert wait_for(lambda: len(_leaks(fake_inet, mark)) >= 4)

"""The unprivileged rung, for real: `landgate run` as `nobody` (user + network namespace, pasta).

Traffic goes only to the tests' fake internet (a namespace tests/net/conftest.py
creates, routed from the host) and to loopback: pasta opens its sockets in the
host's namespace, as nobody, and the host routes them into that namespace.
Each denial comes with its allowed twin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import RecordingServer, scaled
from helpers.procs import child_pids
from launch.lg_helpers import PY, ROOT

from .conftest import ADDRS, FakeInet, require_unprivileged_rung, wait_for

pytestmark = pytest.mark.kernel

POLICY = """\
version: 1
workspace: {ws}
actions:
  - action: file_read
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: file_write
    defaultEffect: deny
    rules:
      - {{ path: "./**", effect: allow }}
  - action: shell_exec
    defaultEffect: allow
  - action: network
    defaultEffect: deny
    rules:
      - {{ destination: "allowed.test", effect: allow }}
      - {{ destination: "exfil.test", effect: deny }}
      - {{ destination: "10.200.1.40", effect: allow }}
      - {{ destination: "localhost:{ok_port}", effect: allow }}
"""

PROBE = r"""
import json, os, socket, sys, time
out = {}
def tcp(host, port):
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        return {"result": "nxdomain", "err": str(e)}
    addr = infos[0][4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(addr)
        s.sendall(b"GET / HTTP/1.0\r\n\r\nlandgate-userns-test")
        data = s.recv(4096).decode(errors="replace")
        return {"result": "ok", "ip": addr[0], "body": data.split("\r\n\r\n")[-1].strip()}
    except OSError as e:
        return {"result": type(e).__name__, "errno": e.errno, "ip": addr[0]}
    finally:
        s.close()
def udp(ip, tag):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    try:
        s.connect((ip, 9999))
        for _ in range(3):
            s.send(tag.encode())
            time.sleep(0.05)
        return "sent"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
out["allowed"] = tcp("allowed.test", 80)
out["exfil"] = tcp("exfil.test", 80)
out["literal_denied"] = tcp(ADDRS["exfil"], 80)
out["literal_ok"] = tcp(ADDRS["literal_ok"], 80)
out["udp_denied"] = udp(ADDRS["exfil"], "udp-denied-" + TAG)
out["udp_ok"] = udp(ADDRS["literal_ok"], "udp-ok-" + TAG)
out["lo_ok"] = tcp("127.0.0.1", OK_PORT)
out["lo_denied"] = tcp("127.0.0.1", DENIED_PORT)
for line in open("/proc/self/status"):
    if line.startswith(("CapEff", "CapBnd")):
        out[line.split(":")[0]] = int(line.split()[1], 16)
print(json.dumps(out))
sys.stdout.flush()
if len(sys.argv) > 1:  # hold the namespace until the test says so
    deadline = time.monotonic() + 30
    while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
        time.sleep(0.02)
"""


@pytest.fixture()
def ctx(world, fake_inet: FakeInet, tun_rw: None):
    require_unprivileged_rung()
    ok, denied = RecordingServer(), RecordingServer()
    policy = world.write_policy(POLICY.format(ws=world.workspace, ok_port=ok.port))
    state = world.root / "xdg-nobody"
    for sub in ("", "state", "config"):
        (state / sub).mkdir(parents=True, exist_ok=True)
        os.chown(state / sub, 65534, 65534)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(world.home),
        "PYTHONPATH": str(ROOT),
        "LANDGATE_DNS_UPSTREAM": ADDRS["dns"],
        "XDG_STATE_HOME": str(state / "state"),
        "XDG_CONFIG_HOME": str(state / "config"),
    }
    code = (
        f"ADDRS = {ADDRS!r}\nTAG = {str(time.monotonic_ns())!r}\nOK_PORT = {ok.port}\n"
        f"DENIED_PORT = {denied.port}\n" + PROBE
    )
    try:
        yield {
            "policy": policy,
            "env": env,
            "code": code,
            "ok": ok,
            "denied": denied,
            "cwd": world.workspace,
        }
    finally:
        ok.close()
        denied.close()


def _argv(ctx: dict, *extra: str) -> list[str]:
    return [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        PY,
        "-m",
        "sandbox",
        "run",
        "--policy",
        str(ctx["policy"]),
        "--",
        "/usr/bin/python3",
        "-c",
        ctx["code"],
        *extra,
    ]


def _ours(marker: str) -> list[int]:
    """Processes whose command line contains `marker`."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(d.name))
        except OSError:
            pass
    return found


def _netns_alive(ino: int) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.stat(d / "ns" / "net").st_ino == ino:
                    return True
            except OSError:
                pass
    return False


def test_nobody_egress_by_name_literal_udp_and_localhost(ctx: dict, fake_inet: FakeInet) -> None:
    mark = fake_inet.mark()
    proc = subprocess.run(
        _argv(ctx),
        env=ctx["env"],
        cwd=ctx["cwd"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    time.sleep(0.3)  # the fake internet logs UDP datagrams asynchronously
    log = fake_inet.since(mark)
    asked = {e["name"] for e in log if e["kind"] == "dns"}

    # the allowed name, by name, through the DNS view and pasta
    assert out["allowed"] == {
        "result": "ok",
        "ip": ADDRS["allowed"],
        "body": f"fake:{ADDRS['allowed']}:80",
    }
    assert "allowed.test" in asked
    # the denied name: NXDOMAIN, and the upstream never saw the question
    assert out["exfil"]["result"] == "nxdomain", out
    assert "exfil.test" not in asked
    # literal address: denied refused at once, the allowed twin reached
    assert out["literal_denied"]["result"] in ("ConnectionRefusedError", "PermissionError"), out
    assert out["literal_ok"]["result"] == "ok", out
    tcp_to = {e["local"] for e in log if e["kind"] == "tcp"}
    assert ADDRS["exfil"] not in tcp_to and ADDRS["literal_ok"] in tcp_to
    # UDP: nothing reaches a denied address; the allowed twin's datagrams arrive
    udp = [e["data"] for e in log if e["kind"] == "udp"]
    assert not any(d.startswith("udp-denied-") for d in udp), udp
    assert any(d.startswith("udp-ok-") for d in udp), (out["udp_ok"], udp)
    # localhost:PORT allowed reaches the host's loopback service; a denied port does not
    assert out["lo_ok"]["result"] == "ok", out
    assert ctx["ok"].connections >= 1 and b"landgate-userns-test" in bytes(ctx["ok"].received)
    assert out["lo_denied"]["result"] != "ok" and ctx["denied"].connections == 0, out
    # the agent holds no capability to change its namespace's ruleset
    assert out["CapEff"] == 0 and not out["CapBnd"] >> 12 & 1  # CAP_NET_ADMIN


NSENTER_PROBE = r"""
import json, socket, sys
ADDRS = json.loads(sys.argv[1])
def tcp(ip):
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((ip, 80)); return "ok"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
def udp(ip, tag):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(tag.encode(), (ip, 9999)); return "sent"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
print(json.dumps({"tcp_denied": tcp(ADDRS["exfil"]), "tcp_ok": tcp(ADDRS["literal_ok"]),
                  "udp_denied": udp(ADDRS["exfil"], "nft-udp-denied"),
                  "udp_ok": udp(ADDRS["literal_ok"], "nft-udp-ok")}))
"""


def _packet_level_checks(agent: int, fake_inet: FakeInet) -> None:
    """The ruleset alone, without the supervisor: a process that is not the agent's (the test,
    root, entering only the sandbox's network namespace) meets the same refusals."""
    mark = fake_inet.mark()
    probe = subprocess.run(
        [
            "nsenter",
            "-t",
            str(agent),
            "-n",
            "/usr/bin/python3",
            "-c",
            NSENTER_PROBE,
            json.dumps(ADDRS),
        ],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=True,
    )
    out = json.loads(probe.stdout)
    assert out["tcp_denied"] == "ConnectionRefusedError" and out["tcp_ok"] == "ok", out
    assert wait_for(lambda: any(e.get("data") == "nft-udp-ok" for e in fake_inet.since(mark)))
    log = fake_inet.since(mark)
    assert not any(e.get("data") == "nft-udp-denied" for e in log)
    assert not any(e["kind"] == "tcp" and e["local"] == ADDRS["exfil"] for e in log)


def test_ruleset_in_the_sandbox_namespace_and_no_leftovers(ctx: dict, fake_inet: FakeInet) -> None:
    """While the agent runs: its namespace has the ruleset on the output hook, which refuses
    by itself.  After a normal exit and after SIGKILL of landgate: no helper, no pasta, no
    namespace."""
    release = ctx["cwd"] / "release"
    for how in ("exit", "sigkill"):
        release.unlink(missing_ok=True)
        proc = subprocess.Popen(
            _argv(ctx, str(release)),
            env=ctx["env"],
            cwd=ctx["cwd"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("{"), proc.stderr.read() if proc.stderr else ""
            helpers = _ours(f"nshelper.py {proc.pid}")
            init = [c for c in sorted(child_pids(proc.pid)) if c not in helpers]
            assert init and helpers
            agent = sorted(child_pids(init[0]))[0]
            ino = os.stat(f"/proc/{agent}/ns/net").st_ino
            assert ino != os.stat("/proc/self/ns/net").st_ino
            pasta = _ours(f"/proc/{agent}/ns/net")
            assert pasta, "pasta is not running for the sandbox"
            rules = subprocess.run(
                ["nsenter", "-t", str(agent), "-n", "nft", "-j", "list", "ruleset"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            chains = [x["chain"] for x in json.loads(rules)["nftables"] if "chain" in x]
            assert any(
                c.get("hook") == "output" and c["table"].startswith("landgate-") for c in chains
            )
            if how == "exit":
                _packet_level_checks(agent, fake_inet)
                release.touch()
            if how == "sigkill":
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=scaled(30))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if how == "exit":
            assert proc.returncode == 0
        helper_mark, pasta_mark = f"nshelper.py {proc.pid}", f"/proc/{agent}/ns/net"
        assert wait_for(
            lambda h=helper_mark, p=pasta_mark: not _ours(h) and not _ours(p),  # type: ignore[misc]
            timeout=10,
        ), f"leftover processes after {how}"
        assert wait_for(lambda i=ino: not _netns_alive(i), timeout=10), (
            f"the namespace outlived landgate ({how})"
        )
        assert (
            not any(p.name.startswith(f"landgate-net-{proc.pid}-") for p in Path("/tmp").iterdir())
            or how == "sigkill"
        )


def test_stale_resolv_dir_of_a_killed_run_is_removed(ctx: dict) -> None:
    """A run killed with SIGKILL leaves its resolv.conf directory; the next run removes it."""
    stale = Path("/tmp") / "landgate-net-999999999-test"
    stale.mkdir()
    os.chown(stale, 65534, 65534)
    (stale / "owner").write_text("999999999 0\n")
    os.chown(stale / "owner", 65534, 65534)
    proc = subprocess.run(
        _argv(ctx),
        env=ctx["env"],
        cwd=ctx["cwd"],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()

"""Benchmark: the egress layer (network namespace + veth/NAT + nftables + DNS view).

Builds its own fake internet (a namespace with TCP, UDP and DNS servers, from
tests/net/fake_inet.py) joined to the host by a veth pair with routes for
10.200.1.0/24 only, then measures, sandbox vs bare (the host namespace):

  setup_ms         NetworkSession.prepare() + close() (median of 20)
  connect_us       TCP connect + close to the fake server (median, p99)
  loopback_connect_us  TCP connect + close to a server on the host's 127.0.0.1 through
                   the loopback forwarder (policy: localhost:*) vs bare
  transfer         100 MB (20 MB with quick) sent to the fake server; seconds and ratio
  dns_us           one A query: through the DNS view (policy check, upstream, nft set
                   update) vs directly to the fake upstream

    .venv/bin/python bench/bench_net.py [--quick]     (root; nothing leaves the machine)
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FAKE = ROOT / "tests" / "net" / "fake_inet.py"
NS = f"lgbench-inet-{os.getpid()}"
HOST_IF, PEER_IF = f"lgbi{os.getpid()}h", f"lgbi{os.getpid()}p"
SERVER, DNS = "10.200.1.10", "10.200.1.53"
POLICY = """version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
      - { destination: "localhost:*", effect: allow }
"""

CLIENT = r"""
import json, socket, sys, time
from dnslib import DNSRecord
mode, arg = sys.argv[1], sys.argv[2]
if mode == "connect":
    host, n, *port = arg.split(","); n = int(n); port = int(port[0]) if port else 80
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        s = socket.create_connection((host, port))
        out.append((time.perf_counter_ns() - t) / 1000)
        s.close()
    print(json.dumps(out))
elif mode == "transfer":
    host, mb = arg.split(","); total = int(mb) << 20
    buf = b"x" * (1 << 20)
    s = socket.create_connection((host, 80))
    t = time.perf_counter()
    s.sendall(b"SINK")
    for _ in range(total >> 20):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    got = int(s.recv(64))
    print(json.dumps({"secs": time.perf_counter() - t, "bytes": got}))
elif mode == "dns":
    server, n = arg.split(","); n = int(n)
    out = []
    for _ in range(n):
        q = DNSRecord.question("allowed.test").pack()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
        t = time.perf_counter_ns()
        s.sendto(q, (server, 53)); s.recv(4096)
        out.append((time.perf_counter_ns() - t) / 1000); s.close()
    print(json.dumps(out))
"""


def _accept_close(srv: socket.socket) -> None:
    while True:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.close()


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _client(netns: str | None, mode: str, arg: str) -> Any:
    prefix = ["nsenter", f"--net={netns}"] if netns else []
    out = subprocess.run(
        [*prefix, sys.executable, "-c", CLIENT, mode, arg],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return json.loads(out)


def _stats(us: list[float]) -> dict[str, float]:
    us = sorted(us)
    return {"median": round(statistics.median(us), 1), "p99": round(us[int(len(us) * 0.99) - 1], 1)}


def run(quick: bool = False) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {"status": "skipped: needs root (namespaces, nftables)"}
    from sandbox.net import NetworkSession
    from sandbox.net.dnsview import Upstream
    from sandbox.policy import load_policy_text

    tmp = Path(tempfile.mkdtemp(prefix="landgate-bench-net-"))
    (tmp / "zone.json").write_text(json.dumps({"allowed.test": {"A": [SERVER], "ttl": 300}}))
    ns = ["ip", "netns", "exec", NS]
    proc = None
    result: dict[str, Any] = {}
    _sh("ip", "netns", "add", NS)
    try:
        _sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", PEER_IF, "netns", NS)
        _sh("ip", "addr", "add", "10.200.251.1/30", "dev", HOST_IF)
        _sh("ip", "link", "set", HOST_IF, "up")
        _sh(*ns, "ip", "link", "set", "lo", "up")
        _sh(*ns, "ip", "addr", "add", "10.200.251.2/30", "dev", PEER_IF)
        _sh(*ns, "ip", "link", "set", PEER_IF, "up")
        for ip in (SERVER, DNS):
            _sh(*ns, "ip", "addr", "add", f"{ip}/32", "dev", "lo")
        _sh(*ns, "ip", "route", "add", "default", "via", "10.200.251.1")
        _sh("ip", "route", "add", "10.200.1.0/24", "via", "10.200.251.2")
        proc = subprocess.Popen(
            [*ns, sys.executable, str(FAKE), str(tmp / "zone.json"), str(tmp / "log.jsonl")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.environ.setdefault("LANDGATE_NET_UPLINKS", HOST_IF)
        policy = load_policy_text(POLICY, source="bench.yaml", cwd=tmp)

        def session() -> Any:
            return NetworkSession(policy, upstream=Upstream(DNS), uplinks=[HOST_IF])

        setups = []
        for _ in range(5 if quick else 20):
            s = session()
            t = time.perf_counter()
            s.prepare()
            s.close()
            setups.append((time.perf_counter() - t) * 1000)
        result["setup_ms"] = {
            "median": round(statistics.median(setups), 1),
            "max": round(max(setups), 1),
        }

        s = session()
        setup = s.prepare()
        try:
            path = setup.netns_path
            assert path is not None
            view = setup.dns_view
            n_dns = 50 if quick else 500
            _client(path, "dns", f"{view},5")  # warm: the first answer fills the sets
            result["dns_us"] = {
                "view": _stats(_client(path, "dns", f"{view},{n_dns}")),
                "direct": _stats(_client(None, "dns", f"{DNS},{n_dns}")),
            }
            n = 100 if quick else 1000
            lo_srv = socket.socket()
            lo_srv.bind(("127.0.0.1", 0))
            lo_srv.listen(4096)
            lo_port = lo_srv.getsockname()[1]
            threading.Thread(target=_accept_close, args=(lo_srv,), daemon=True).start()
            # localhost:* forwards the host's listeners as of the last scan (every 2 s).
            deadline = time.monotonic() + 5
            while (
                s._loopback is not None
                and lo_port not in s._loopback.ports
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            result["loopback_connect_us"] = {
                "sandbox": _stats(_client(path, "connect", f"127.0.0.1,{n},{lo_port}")),
                "bare": _stats(_client(None, "connect", f"127.0.0.1,{n},{lo_port}")),
            }
            lo_srv.close()
            sand = _stats(_client(path, "connect", f"{SERVER},{n}"))
            bare = _stats(_client(None, "connect", f"{SERVER},{n}"))
            result["connect_us"] = {"sandbox": sand, "bare": bare}
            mb = 20 if quick else 100
            rounds = 3 if quick else 5
            tb, ts = [], []
            for _ in range(rounds):  # interleaved, best of N: the machine is shared
                tb.append(_client(None, "transfer", f"{SERVER},{mb}")["secs"])
                ts.append(_client(path, "transfer", f"{SERVER},{mb}")["secs"])
            result["transfer"] = {
                "mb": mb,
                "bare_s": round(min(tb), 4),
                "sandbox_s": round(min(ts), 4),
                "ratio": round(min(ts) / min(tb), 3),
                "goal_ratio": 1.05,
            }
        finally:
            s.close()
        result["status"] = "ok"
        return result
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True, check=False)


# ---- the network phase of a launch, piece by piece (--launch) -------------------------------
# A worker per source tree (PYTHONPATH), alternated round by round (the host is shared and
# noisy): each round runs subprocess.run, sandbox.run (read-only preset) and sandbox.run
# (a deny-all policy), then a bare NetworkSession.prepare()+close() with its pieces timed by
# wrappers around the functions both trees have (so a tree without this code is measured
# the same way).
LAUNCH_WORKER = r"""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="lg-bench-netl-")
import sandbox
from sandbox.policy import load_policy_text
from sandbox.net import session as sess, netns as nsmod, dnsview, loopback
deny_all = load_policy_text(
    "version: 1\nactions:\n  - action: network\n    defaultEffect: deny\n",
    source="deny-all.yaml", cwd=Path("/tmp"))
egress = load_policy_text(
    "version: 1\nactions:\n  - action: network\n    defaultEffect: deny\n    rules:\n"
    "      - { destination: allowed.test, effect: allow }\n",
    source="egress.yaml", cwd=Path("/tmp"))
acc = {}
def wrap(owner, name, key):
    fn = getattr(owner, name, None)
    if fn is None:
        return
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + (time.perf_counter() - t) * 1e3
    setattr(owner, name, timed)
wrap(sess, "network_capabilities", "caps")
wrap(sess, "cleanup_stale", "cleanup_stale")
wrap(nsmod, "allocate_addressing", "allocate")
wrap(nsmod, "create_netns", "netns+veth/lo+binds")
try:
    from sandbox.net.rung_root import RootRung
    wrap(RootRung, "_enable_forwarding", "sysctls")
except ImportError:
    pass
from sandbox.host import nftables
wrap(nftables.Nft, "run", "nft")
wrap(dnsview.DnsView, "start", "dns_start")
wrap(loopback.LoopbackForwarder, "start", "lo_forwarder")
wrap(sess.NetworkSession, "close", "close")
audit = tempfile.mkdtemp(prefix="lg-bench-netl-audit-")
for line in sys.stdin:
    out = {}
    t = time.perf_counter()
    subprocess.run(["/bin/true"])
    out["bare"] = (time.perf_counter() - t) * 1e3
    for key, pol in (("read_only", "read-only"), ("deny_all", deny_all), ("egress", egress)):
        t = time.perf_counter()
        r = sandbox.run(["/bin/true"], policy=pol, audit=audit)
        out[key] = (time.perf_counter() - t) * 1e3
        assert r.returncode == 0, r
    acc.clear()
    ns = sess.NetworkSession(deny_all)  # the read-only preset's network block: the same
    t = time.perf_counter(); ns.prepare(); prep = (time.perf_counter() - t) * 1e3
    ns.close()
    out["prepare"] = prep
    out.update({"piece:" + k: v for k, v in acc.items()})
    print(json.dumps(out), flush=True)
"""


def _cli_network_ms(tree: str, policy: str) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=tree, LANDGATE_DEBUG_TIMING="1")
    env["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="lg-bench-netl-cli-")
    p = subprocess.run(
        [sys.executable, "-m", "sandbox", "run", "--policy", policy, "--", "/bin/true"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/tmp",
    )
    line = next(ln for ln in p.stderr.splitlines() if "timing (ms)" in ln)
    parts = {kv.split()[0]: float(kv.split()[1]) for kv in line.split(":", 2)[2].split(",")}
    return parts["network"], parts["total"]


def launch(trees: dict[str, str], rounds: int) -> dict[str, Any]:
    """Medians per tree of every measure, alternating the trees each round."""
    workers = {
        label: subprocess.Popen(
            [sys.executable, "-c", LAUNCH_WORKER],
            env=dict(os.environ, PYTHONPATH=tree),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd="/tmp",
        )
        for label, tree in trees.items()
    }
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
    try:
        for i in range(rounds + 2):  # two warm-up rounds, not counted
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for label in order:
                w = workers[label]
                assert w.stdin is not None and w.stdout is not None
                w.stdin.write("go\n")
                w.stdin.flush()
                row = json.loads(w.stdout.readline())
                for policy in ("read-only",):
                    net, total = _cli_network_ms(trees[label], policy)
                    row["cli_network"], row["cli_total"] = net, total
                if i >= 2:
                    for k, v in row.items():
                        samples[label].setdefault(k, []).append(v)
    finally:
        for w in workers.values():
            w.kill()
            w.wait()
    out: dict[str, Any] = {"rounds": rounds}
    for label, cols in samples.items():
        med = {k: round(statistics.median(v), 2) for k, v in sorted(cols.items())}
        med["read_only_minus_bare"] = round(
            statistics.median(a - b for a, b in zip(cols["read_only"], cols["bare"], strict=True)),
            2,
        )
        med["deny_all_minus_bare"] = round(
            statistics.median(a - b for a, b in zip(cols["deny_all"], cols["bare"], strict=True)), 2
        )
        med["egress_minus_bare"] = round(
            statistics.median(a - b for a, b in zip(cols["egress"], cols["bare"], strict=True)), 2
        )
        out[label] = med
    return out


# ---- memory: RSS of each of N concurrent full-layer sessions (--memory) ---------------------
MEMORY_WORKER = r"""
import sys, time
from pathlib import Path
from sandbox.net import NetworkSession
from sandbox.net.setup import _SetFeeder
from sandbox.plan.names import judge_name
from sandbox.policy import load_policy_text
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
pol = load_policy_text(
    "version: 1\nactions:\n  - action: network\n    defaultEffect: deny\n    rules:\n"
    "      - { destination: allowed.test, effect: allow }\n", source="m.yaml", cwd=Path("/tmp"))
ns = NetworkSession(pol, uplinks=[])
ns.prepare()
print("ready", flush=True)
sys.stdin.readline()  # every session exists now
before = rss()
# what the DNS view does for each answer: add an element to the session's sets
try:
    feeder = _SetFeeder(ns._nft, ns.names.netns, forget=None)  # as the session makes it
except TypeError:
    feeder = _SetFeeder(ns._nft, ns.names.netns)  # a tree from before the forget rule
feeder(["192.0.2.1"], judge_name(pol, "allowed.test"), 60)
time.sleep(0.2)  # a context handed to the freeing thread is gone by now
print(before, rss(), flush=True)
sys.stdin.readline()
ns.close()
"""


def memory(trees: dict[str, str], n: int) -> dict[str, Any]:
    """Median RSS (KB) of n concurrent sessions of each tree (one tree at a time)."""
    out: dict[str, Any] = {"sessions": n}
    for label, tree in trees.items():
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", MEMORY_WORKER],
                env=dict(os.environ, PYTHONPATH=tree),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd="/tmp",
            )
            for _ in range(n)
        ]
        try:
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            rows = []
            for p in procs:
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write("go\n")
                p.stdin.flush()
                rows.append([int(x) for x in p.stdout.readline().split()])
            out[label] = {
                "rss_after_prepare_kb": statistics.median(r[0] for r in rows),
                "rss_after_set_update_kb": statistics.median(r[1] for r in rows),
            }
        finally:
            for p in procs:
                if p.stdin is not None:
                    p.stdin.close()
                p.wait(timeout=30)
    return out


if __name__ == "__main__":
    if "--memory" in sys.argv:
        args = [a for a in sys.argv[1:] if "=" in a]
        trees = dict(a.split("=", 1) for a in args) or {"this": str(ROOT)}
        n = int(sys.argv[sys.argv.index("--sessions") + 1]) if "--sessions" in sys.argv else 10
        print(json.dumps(memory(trees, n), indent=2))
    elif "--launch" in sys.argv:
        # --launch [LABEL=TREE ...] [--rounds N]: default this tree alone.
        args = [a for a in sys.argv[1:] if "=" in a]
        trees = dict(a.split("=", 1) for a in args) or {"this": str(ROOT)}
        n = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 15
        print(json.dumps(launch(trees, n), indent=2))
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=2))

"""Run inside `unshare -n` by test_nftnl.py (a private network namespace, nothing shared).

python nftnl_probe.py compare veth|output   load one ruleset through libnftables (table
    lga) and through landgate's netlink path (lgb); print both tables as the kernel
    holds them: `nft -j list`, `nft --debug=netlink list`, and the raw chain, set and
    rule dumps (names, handles and element expiry normalised)
python nftnl_probe.py memory netlink|libnftables N   N other tables in the namespace,
    then one session's ruleset load and one set update from a DNS-view-like thread;
    print the process's RSS growth (kB) and whether libnftables is mapped
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sandbox.host.nftables import Nft, NftNetlink
from sandbox.net.setup import _SetFeeder
from sandbox.netlink import (
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    attrs,
    message,
    replies,
)
from sandbox.plan.names import judge_name
from sandbox.plan.nft import NftTopology, compile_nft_ruleset
from sandbox.policy.loader import load_policy_text

POLICY = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
      - { destination: "ports.test:443", effect: allow }
      - { destination: "10.0.0.0/8:443", effect: allow }
      - { destination: "10.16.0.0/12", effect: allow }
      - { destination: "0.0.0.0/0:8443", effect: allow }
      - { destination: "10.1.2.3", effect: deny }
      - { destination: "2001:db8::/32", effect: deny }
      - { destination: "2001:db8:8000::/33", effect: deny }
      - { destination: "[2001:db8:1::5]:80", effect: allow }
      - { destination: "*:22", effect: deny }
"""
PINNED = {"allowed.test": ["192.0.2.4", "2001:db8::9"], "ports.test": ["192.0.2.8"]}


def ruleset(table: str, hook: str) -> dict:
    topo = NftTopology(
        table=table,
        host_if="lgxh0",
        sandbox4="10.9.0.2",
        sandbox6="fd00::2",
        view4="10.9.0.1",
        view6="fd00::1",
        hook=hook,
    )
    return compile_nft_ruleset(load_policy_text(POLICY), PINNED, topo)


def nft(*argv: str) -> str:
    return subprocess.run(["nft", *argv], capture_output=True, text=True, check=True).stdout


def raw_dump(table: str) -> list[str]:
    """GETCHAIN, GETSET, GETRULE dumps of one table, as hex, in the kernel's order."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    out: list[str] = []
    for seq, msg in enumerate((4, 10, 7), 1):  # NFT_MSG_GETCHAIN, GETSET, GETRULE
        sock.send(message((10 << 8) | msg, NLM_F_REQUEST | NLM_F_DUMP, seq, b"\x01\x00\x00\x00"))
        for kind, mseq, payload in replies(sock):
            if mseq != seq:
                continue
            if kind in (NLMSG_DONE, NLMSG_ERROR):
                break
            if attrs(payload, 4).get(1) == table.encode() + b"\0":
                out.append(payload.hex())
    return out


def compare(hook: str) -> None:
    Nft().run(ruleset("lga", hook))
    NftNetlink.run(ruleset("lgb", hook))

    def listing(t: str, *opts: str) -> str:
        return re.sub(r"expires \S+", "", nft(*opts, "list", "table", "inet", t))

    def js(t: str) -> list:
        items = json.loads(nft("-j", "list", "table", "inet", t))["nftables"]
        for item in items:
            for obj in item.values():
                obj.pop("handle", None)
                obj.pop("table", None)
                if "table" in item:
                    obj.pop("name", None)
                for e in obj.get("elem", []) if isinstance(obj, dict) else []:
                    if isinstance(e, dict):
                        e.get("elem", {}).pop("expires", None)
        return items

    print(
        json.dumps(
            {
                "json": [js("lga"), js("lgb")],
                "text": [listing("lga", "--debug=netlink"), listing("lgb", "--debug=netlink")],
                "raw": [raw_dump("lga"), raw_dump("lgb")],
            }
        )
    )


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def memory(path: str, others: int) -> None:
    big = {"nftables": []}
    for i in range(others):
        big["nftables"] += ruleset(f"other{i:04d}", "veth")["nftables"][1:]
    subprocess.run(["nft", "-j", "-f", "-"], input=json.dumps(big), text=True, check=True)
    handle = Nft() if path == "libnftables" else NftNetlink()
    before = rss_kb()
    handle.run(ruleset("mine", "veth"))
    policy = load_policy_text(POLICY)
    feeder = _SetFeeder(handle, "mine")
    t = threading.Thread(
        target=feeder, args=(["192.0.2.77"], judge_name(policy, "allowed.test"), 60)
    )
    t.start()
    t.join()
    grown = rss_kb() - before
    mapped = "libnftables" in Path("/proc/self/maps").read_text()
    print(json.dumps({"grown_kb": grown, "libnftables_mapped": mapped}))


def big(n: int) -> None:
    """A policy of n literal rules (n anonymous sets, 3n messages) through the netlink path;
    print how many rules the kernel's egress chain holds."""
    rules = "".join(
        f'      - {{ destination: "10.{i // 250}.{i % 250}.0/24:{1000 + i}", effect: allow }}\n'
        for i in range(n)
    )
    policy = load_policy_text(
        "version: 1\nactions:\n  - action: network\n    defaultEffect: deny\n    rules:\n" + rules
    )
    topo = NftTopology(table="big", host_if="lgxh0", sandbox4="10.9.0.2", view4="10.9.0.1")
    NftNetlink.run(compile_nft_ruleset(policy, None, topo))
    items = json.loads(nft("-j", "list", "chain", "inet", "big", "egress"))["nftables"]
    print(json.dumps({"rules": sum(1 for item in items if "rule" in item)}))


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        compare(sys.argv[2])
    elif sys.argv[1] == "big":
        big(int(sys.argv[2]))
    else:
        memory(sys.argv[2], int(sys.argv[3]))

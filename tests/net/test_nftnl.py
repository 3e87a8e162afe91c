"""The root rung's ruleset goes to the kernel over netlink (sandbox/host/nftnl.py), not
through libnftables, whose cache fetched every table of the namespace (~0.5 MB each) for
each batch.  Each kernel test runs in a private network namespace (`unshare -n`, the
probe script nftnl_probe.py): nothing is shared with other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root

from sandbox.host.nftnl import NftError, translate
from sandbox.plan.nft import add_elements_batch

PROBE = Path(__file__).with_name("nftnl_probe.py")


def _probe(*args: str) -> dict:
    p = subprocess.run(
        ["unshare", "-n", sys.executable, str(PROBE), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.kernel
@pytest.mark.parametrize("hook", ["veth", "output"])
def test_netlink_path_loads_exactly_what_libnftables_loaded(hook: str) -> None:
    """One ruleset with every kind of rule the compiler writes (literal addresses and
    prefixes, on and off byte boundaries, /0, ports, names pinned into every set), loaded
    both ways: the kernel holds byte-identical chains, sets and rules, and `nft` lists
    the same text and JSON."""
    require_root()
    out = _probe("compare", hook)
    lga, lgb = b"lga".hex(), b"lgb".hex()
    assert out["raw"][0], "the dump found no objects: the comparison would be empty"
    assert out["raw"][0] == [m.replace(lgb, lga) for m in out["raw"][1]]
    assert out["text"][0] == out["text"][1].replace("lgb", "lga")
    assert out["json"][0] == out["json"][1]
    assert "@allow4" in out["text"][0] or "allow4" in out["text"][0]


@pytest.mark.kernel
def test_a_large_policy_loads_whole() -> None:
    """1,000 literal rules (3,000+ messages, ~600 KB): the batch fits the socket's send
    buffer and every acknowledgement its receive buffer (the defaults held ~100 rules:
    past them send failed with EMSGSIZE, or recv with ENOBUFS)."""
    require_root()
    # egress besides the literal rules: established, the DNS view, DNS elsewhere, the two
    # deny sets, the four allow sets, the default
    assert _probe("big", "1000")["rules"] == 1000 + 10


@pytest.mark.kernel
def test_many_tables_cost_the_netlink_path_nothing() -> None:
    """With 100 other tables in the namespace (100 concurrent sessions), a ruleset load
    and a set update from another thread leave libnftables unloaded and the process
    grown by well under a table's worth per table; the twin shows what libnftables 1.0.6
    cost in the same place (its cache of all 100 tables, kept by glibc)."""
    require_root()
    ours = _probe("memory", "netlink", "100")
    assert ours["libnftables_mapped"] is False
    assert ours["grown_kb"] < 8 * 1024, ours
    theirs = _probe("memory", "libnftables", "100")
    assert theirs["grown_kb"] > 30 * 1024, theirs  # the measurement can see the cause


def test_untranslatable_batches_are_refused_not_guessed() -> None:
    """Anything the compiler does not write is an error naming it (never a partial rule)."""
    cases = [
        {"delete": {"table": {"family": "inet", "name": "t"}}},
        {"add": {"table": {"family": "ip", "name": "t"}}},
        {"add": {"flowtable": {"family": "inet", "table": "t", "name": "f"}}},
        {"add": {"set": {"family": "inet", "table": "t", "name": "s", "type": "ether_addr"}}},
        {
            "add": {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "c",
                    "expr": [{"match": {"op": "<", "left": {"meta": {"key": "mark"}}, "right": 1}}],
                }
            }
        },
        {"add": {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"drop": None}]}}},
    ]
    for cmd in cases:
        with pytest.raises(NftError, match=r"^nf_tables: "):
            translate({"nftables": [cmd]})
    # the allowed twin: what the DNS view sends translates
    batch, tables = translate(add_elements_batch("t", {"allowany4": [_elem("192.0.2.1")]}))
    assert tables == "inet t" and len(batch.messages) == 1


def _elem(val: object) -> dict:
    return {"elem": {"val": val, "timeout": 60}}


@pytest.mark.kernel
def test_refused_batch_is_one_line_naming_the_table() -> None:
    """A bad set element (an IPv6 key in an IPv4 set) refuses the whole batch with one
    line naming the table and the message; the allowed twin is in the set afterwards."""
    require_root()
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from sandbox.host.nftables import NftError, load
from sandbox.plan.nft import add_elements_batch, compile_nft_ruleset, NftTopology
from sandbox.policy.loader import load_policy_text
pol = load_policy_text("version: 1\\nactions:\\n  - action: network\\n    defaultEffect: deny\\n")
load(compile_nft_ruleset(pol, None, NftTopology(table="lgbad", host_if="lgxh0")))
good = {{"elem": {{"val": "192.0.2.1", "timeout": 60}}}}
bad = {{"elem": {{"val": "2001:db8::1", "timeout": 60}}}}
try:
    load(add_elements_batch("lgbad", {{"allowany4": [good, bad]}}))
    print("loaded")
except NftError as exc:
    print(exc)
load(add_elements_batch("lgbad", {{"allowany4": [good]}}))
import subprocess
print(subprocess.run(["nft", "list", "set", "inet", "lgbad", "allowany4"],
                     capture_output=True, text=True).stdout.count("192.0.2.1"))
"""
    p = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == (
        "nf_tables: table inet lgbad: add element to set allowany4: Invalid argument"
    ), lines
    assert lines[1] == "1"

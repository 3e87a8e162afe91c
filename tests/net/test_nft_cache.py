"""nf_tables table names and deletes over netlink (sandbox/host/nftables.py).

libnftables 1.0.6 caches every table of the namespace for a listing or an add/delete
batch (~0.5 MB a table): table names come from a netlink dump of their own, and the
ruleset itself is loaded over netlink too (tests/net/test_nftnl.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_root

from sandbox.host.nftables import table_names

from .conftest import FakeInet, net_session

pytestmark = pytest.mark.kernel

FULL = """\
version: 1
actions:
  - action: network
    defaultEffect: deny
    rules:
      - { destination: "allowed.test", effect: allow }
"""


def _nft_list_tables() -> set[tuple[str, str]]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return {tuple(line.split()[1:3]) for line in out.stdout.splitlines() if line.strip()}  # type: ignore[misc]


def test_table_names_is_what_nft_lists(fake_inet: FakeInet) -> None:
    require_root()
    ns = net_session(FULL, fake_inet)
    ns.prepare()
    try:
        names = set(table_names())
        assert ("inet", ns.names.netns) in names
        assert names == _nft_list_tables()
    finally:
        ns.close()
    assert ("inet", ns.names.netns) not in table_names()


def test_table_names_refused_without_cap_net_admin() -> None:
    """The capability probe's denial: nfnetlink checks CAP_NET_ADMIN on every message."""
    require_root()
    code = (
        "from sandbox.host.nftables import table_names, NftError\n"
        "try:\n    table_names(); print('listed')\n"
        "except NftError as e:\n    print('refused', e)\n"
    )
    p = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])),
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.stdout.startswith("refused nf_tables: list tables: Operation not permitted"), p


def test_leftover_table_of_the_same_name_is_replaced_not_merged(fake_inet: FakeInet) -> None:
    """The ruleset creates its table (no add+delete+add): a leftover of the same name, a
    killed run's under a reused pid, is deleted and the load retried; nothing of it stays."""
    require_root()
    ns = net_session(FULL, fake_inet)
    t = ns.names.netns
    subprocess.run(
        ["nft", "-f", "-"],
        input=f"table inet {t} {{ chain leftover {{ type filter hook input priority 0; "
        'policy accept; accept comment "LEFTOVER"; }; }\n',
        text=True,
        check=True,
    )
    try:
        ns.prepare()
        out = subprocess.run(
            ["nft", "list", "table", "inet", t], capture_output=True, text=True, check=True
        ).stdout
        assert "LEFTOVER" not in out and "chain egress" in out
    finally:
        ns.close()
        subprocess.run(["nft", "delete", "table", "inet", t], capture_output=True, check=False)
    assert ("inet", t) not in table_names()

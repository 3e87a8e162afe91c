"""Translate landgate's nftables JSON (sandbox/plan/nft.py) into nf_tables netlink messages.

Why not libnftables: version 1.0.6 fetches every table of the namespace into its cache
for any add batch, ~0.5 MB a table (four 8,192-bucket hash tables each).  With 100
concurrent sessions every landgate process allocated ~50 MB per batch, and glibc kept
most of it (measured: 23 -> 76 MB after the ruleset load, 129 MB after one set update
from another thread; malloc_trim gave it back).  Here a batch is a few kilobytes and
reads nothing.

The JSON form stays the plan's source of truth (`landgate plan` renders it); this module
knows exactly the subset compile_nft_ruleset emits and refuses anything else (NftError),
never guessing.  The bytes are those nft 1.0.6 sends for the same JSON (its dependencies,
register choice, anonymous sets and set userdata, so `nft list` prints the same text):
tests/net/test_nftnl.py loads both ways and compares the kernel's dumps.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import Any

from sandbox.errors import LaunchError
from sandbox.netlink import NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, attr, be32, be64, nest, strz


class NftError(LaunchError):
    """nf_tables refused a batch, or a batch could not be translated (one line)."""


SUBSYS = 10  # NFNL_SUBSYS_NFTABLES
NEWTABLE, NEWCHAIN, NEWRULE, NEWSET, NEWSETELEM = 0, 3, 6, 9, 12
NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6 = 1, 2, 10
_LIST_ELEM = 1
# enum nft_registers: 16-byte registers 1..4, 4-byte registers from 8 (NFT_REG32_00)
_REG_VERDICT, _REG_1, _REG32_00 = 0, 1, 8
_META_IIFNAME, _META_OIFNAME, _META_NFPROTO, _META_L4PROTO = 6, 7, 15, 16
_BASE_NETWORK, _BASE_TRANSPORT = 1, 2
_CMP_EQ, _CMP_NEQ = 0, 1
_NF_ACCEPT, _NFT_JUMP, _NFT_GOTO = 1, -3, -4
_SET_ANONYMOUS, _SET_CONSTANT, _SET_TIMEOUT = 0x1, 0x2, 0x10
_HOOKS = {"prerouting": 0, "input": 1, "forward": 2, "output": 3, "postrouting": 4}
_POLICIES = {"drop": 0, "accept": 1}
_CT_STATES = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
_L4 = {"tcp": 6, "udp": 17, "icmpv6": 58}
_ICMP6 = {
    "nd-router-solicit": 133,
    "nd-router-advert": 134,
    "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136,
}


def _u32(v: int) -> bytes:
    return struct.pack("=I", v)


def _ud(kind: int, payload: bytes) -> bytes:
    """One TLV of nftnl's userdata (type byte, length byte, value)."""
    return bytes((kind, len(payload))) + payload


# Set key types (nft's datatype ids; a concatenation packs them 6 bits apart), key lengths
# (each part padded to 4 bytes), and the userdata nft 1.0.6 stores with them (key byte
# order, the `typeof` description) which `nft list` reads back to print the set.
_BIG = _ud(0, _u32(2))
_CONCAT_UD = _ud(0, _u32(0)) + _ud(3, _ud(0, _u32(13)) + _ud(1, b""))
_SET_TYPES: dict[str, tuple[int, int, bytes]] = {
    "ipv4_addr": (7, 4, _BIG),
    "ipv6_addr": (8, 16, _BIG),
    "ipv4_addr . inet_service": (7 << 6 | 13, 8, _CONCAT_UD),
    "ipv6_addr . inet_service": (8 << 6 | 13, 20, _CONCAT_UD),
}
# Anonymous sets ({tcp, udp}, {nd-neighbor-solicit, ...}): by the expression they follow.
_ANON_L4 = (12, 1, _ud(0, _u32(1)) + _ud(3, _ud(0, _u32(9)) + _ud(1, _ud(0, _u32(16)))))
_ANON_ICMP6 = (
    29,
    1,
    _BIG + _ud(3, _ud(0, _u32(7)) + _ud(1, _ud(0, _u32(14)) + _ud(1, _u32(1)))),
)


def _expr(name: str, *data: bytes) -> bytes:
    return nest(_LIST_ELEM, strz(1, name), nest(2, *data))


def _value(kind: int, raw: bytes) -> bytes:
    return nest(kind, attr(1, raw))  # NFTA_DATA_VALUE


def _meta(key: int) -> bytes:
    return _expr("meta", be32(2, key), be32(1, _REG_1))


def _payload(base: int, offset: int, length: int, reg: int = _REG_1) -> bytes:
    return _expr("payload", be32(1, reg), be32(2, base), be32(3, offset), be32(4, length))


def _cmp(raw: bytes, op: int = _CMP_EQ) -> bytes:
    return _expr("cmp", be32(1, _REG_1), be32(2, op), _value(3, raw))


def _verdict(code: int, chain: str | None = None) -> bytes:
    inner = be32(1, code) + (strz(2, chain) if chain else b"")
    return _expr("immediate", be32(1, _REG_VERDICT), nest(2, nest(2, inner)))


def _ifname(name: str) -> bytes:
    raw = name.encode()
    if len(raw) > 15:
        raise NftError(f"nf_tables: interface name {name!r} is longer than 15 bytes")
    return raw.ljust(16, b"\0")


def _addr(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _key(val: Any) -> bytes:
    """A set element's key: an address, or `address . port` (each part padded to 4 bytes)."""
    if isinstance(val, str):
        return _addr(val)
    if isinstance(val, dict) and set(val) == {"concat"} and len(val["concat"]) == 2:
        ip, port = val["concat"]
        return _addr(ip) + struct.pack("!H2x", int(port))
    raise NftError(f"nf_tables: set element {val!r}: not an address or address . port")


class Batch:
    """The messages of one nf_tables transaction: (type, flags, body, what it does)."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, int, bytes, str]] = []
        self._set_ids: dict[tuple[str, str], int] = {}
        self._next_id = 0

    def _add(self, msg: int, flags: int, body: bytes, what: str) -> None:
        self.messages.append(((SUBSYS << 8) | msg, flags, body, what))

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def table(self, name: str, create: bool) -> None:
        flags = NLM_F_EXCL if create else NLM_F_CREATE
        self._add(NEWTABLE, flags, strz(1, name) + be32(2, 0), f"add table inet {name}")

    def set(self, table: str, name: str, typ: str, flags: list[str]) -> None:
        if typ not in _SET_TYPES or flags not in ([], ["timeout"]):
            raise NftError(f"nf_tables: set {name}: type {typ!r} flags {flags} not supported")
        key_type, key_len, udata = _SET_TYPES[typ]
        sid = self._set_ids[(table, name)] = self._id()
        body = strz(1, table) + strz(2, name)
        body += be32(3, _SET_TIMEOUT if flags else 0) + be32(4, key_type) + be32(5, key_len)
        body += be32(10, sid) + attr(13, udata)
        self._add(NEWSET, NLM_F_CREATE, body, f"add set {name}")

    def chain(self, table: str, obj: dict[str, Any]) -> None:
        body = strz(1, table) + strz(3, obj["name"])
        if "hook" in obj:
            if obj.get("type") not in ("filter", "nat") or obj["hook"] not in _HOOKS:
                raise NftError(f"nf_tables: chain {obj['name']}: unsupported type or hook")
            body += strz(7, obj["type"]) + be32(5, _POLICIES[obj.get("policy", "accept")])
            body += nest(4, be32(1, _HOOKS[obj["hook"]]), be32(2, int(obj["prio"])))
        self._add(NEWCHAIN, NLM_F_CREATE, body, f"add chain {obj['name']}")

    def elements(self, table: str, name: str, elems: Iterable[dict[str, Any]]) -> None:
        items = []
        for item in elems:
            e = item["elem"]
            items.append(
                nest(_LIST_ELEM, be64(4, int(e["timeout"]) * 1000), _value(1, _key(e["val"])))
            )
        body = strz(1, table) + strz(2, name)
        if (table, name) in self._set_ids:
            body += be32(4, self._set_ids[(table, name)])
        body += nest(3, *items)
        self._add(NEWSETELEM, NLM_F_CREATE, body, f"add element to set {name}")

    def anonymous_set(self, table: str, kind: tuple[int, int, bytes], keys: list[bytes]) -> int:
        key_type, key_len, udata = kind
        sid = self._id()
        body = strz(1, table) + strz(2, "__set%d")
        body += be32(3, _SET_ANONYMOUS | _SET_CONSTANT) + be32(4, key_type) + be32(5, key_len)
        body += be32(10, sid) + nest(9, be32(1, len(keys))) + attr(13, udata)
        self._add(NEWSET, NLM_F_CREATE, body, "add anonymous set")
        items = [nest(_LIST_ELEM, _value(1, k)) for k in keys]
        body = strz(1, table) + strz(2, "__set%d") + be32(4, sid) + nest(3, *items)
        self._add(NEWSETELEM, NLM_F_CREATE, body, "add anonymous set's elements")
        return sid

    def rule(self, table: str, obj: dict[str, Any]) -> None:
        ctx = _RuleContext(self, table)
        exprs = b"".join(ctx.statement(e) for e in obj["expr"])
        body = strz(1, table) + strz(2, obj["chain"]) + nest(4, exprs)
        what = f"add rule to chain {obj['chain']}"
        if obj.get("comment"):
            comment = obj["comment"].encode()[:127] + b"\0"
            body += attr(7, _ud(0, comment))  # NFTNL_UDATA_RULE_COMMENT
            what += f" ({obj['comment']})"
        self._add(NEWRULE, NLM_F_CREATE | NLM_F_APPEND, body, what)


class _RuleContext:
    """One rule's expressions: nft's implicit dependencies are added once per rule."""

    def __init__(self, batch: Batch, table: str) -> None:
        self._batch = batch
        self._table = table
        self._have: set[tuple[int, int]] = set()  # (meta key, value) already matched

    def _dep(self, key: int, value: int) -> bytes:
        if (key, value) in self._have:
            return b""
        self._have.add((key, value))
        return _meta(key) + _cmp(bytes((value,)))

    def statement(self, e: dict[str, Any]) -> bytes:
        ((kind, body),) = e.items()
        if kind == "match":
            return self._match(body["left"], body["right"], body["op"])
        if kind == "counter" and body is None:
            return _expr("counter")
        if kind == "accept" and body is None:
            return _verdict(_NF_ACCEPT)
        if kind in ("jump", "goto"):
            return _verdict(_NFT_JUMP if kind == "jump" else _NFT_GOTO, body["target"])
        if kind == "masquerade" and body is None:
            return _expr("masq")
        if kind == "reject" and body == {"type": "tcp reset"}:
            return _expr("reject", be32(1, 1))  # NFT_REJECT_TCP_RST
        if kind == "reject" and body == {"type": "icmpx", "expr": "port-unreachable"}:
            return _expr("reject", be32(1, 2), attr(2, b"\x01"))  # ICMPX_UNREACH, PORT_UNREACH
        raise NftError(f"nf_tables: statement {e!r} not supported")

    def _load(
        self, left: dict[str, Any], reg: int = _REG_1, length: int | None = None
    ) -> tuple[bytes, int, str]:
        """Dependencies and the load of `left` into `reg` (an address: its first `length`
        bytes if given); the load's length and the value kind."""
        ((kind, body),) = left.items()
        if kind == "meta" and body["key"] in ("iifname", "oifname"):
            key = _META_IIFNAME if body["key"] == "iifname" else _META_OIFNAME
            return _meta(key), 16, "ifname"
        if kind == "meta" and body["key"] == "l4proto":
            return _meta(_META_L4PROTO), 1, "l4proto"
        if kind == "payload":
            proto, field = body["protocol"], body["field"]
            if proto in ("ip", "ip6") and field in ("saddr", "daddr"):
                v6 = proto == "ip6"
                size = 16 if v6 else 4
                off = (8 if field == "saddr" else 24) if v6 else (12 if field == "saddr" else 16)
                size = size if length is None else length
                dep = self._dep(_META_NFPROTO, NFPROTO_IPV6 if v6 else NFPROTO_IPV4)
                return dep + _payload(_BASE_NETWORK, off, size, reg), size, proto
            if proto == "th" and field == "dport":
                return _payload(_BASE_TRANSPORT, 2, 2, reg), 2, "port"
            if proto == "icmpv6" and field == "type":
                dep = self._dep(_META_NFPROTO, NFPROTO_IPV6) + self._dep(_META_L4PROTO, 58)
                return dep + _payload(_BASE_TRANSPORT, 0, 1, reg), 1, "icmpv6"
        raise NftError(f"nf_tables: match on {left!r} not supported")

    def _match(self, left: dict[str, Any], right: Any, op: str) -> bytes:
        cmp_op = {"==": _CMP_EQ, "!=": _CMP_NEQ}.get(op)
        if "ct" in left and left["ct"] == {"key": "state"} and op == "in":
            states = right if isinstance(right, list) else [right]
            mask = 0
            for s in states:
                mask |= _CT_STATES[s]
            load = _expr("ct", be32(2, 0), be32(1, _REG_1))  # NFT_CT_STATE
            bits = _expr(
                "bitwise",
                be32(1, _REG_1),
                be32(2, _REG_1),
                be32(3, 4),
                _value(4, _u32(mask)),
                _value(5, _u32(0)),
            )
            return load + bits + _cmp(_u32(0), _CMP_NEQ)
        if "concat" in left:
            if not (isinstance(right, str) and right.startswith("@")) or op != "==":
                raise NftError(f"nf_tables: concatenation against {right!r} not supported")
            code, word = b"", 0
            for part in left["concat"]:
                reg = _REG_1 + word // 4 if word % 4 == 0 else _REG32_00 + word
                load, size, _ = self._load(part, reg)
                code += load
                word += (size + 3) // 4
            return code + self._lookup(right[1:])
        if cmp_op is None:
            raise NftError(f"nf_tables: operator {op!r} not supported")
        if isinstance(right, dict) and set(right) == {"prefix"}:
            return self._prefix(left, right["prefix"], cmp_op)
        load, size, vkind = self._load(left)
        if isinstance(right, str) and right.startswith("@"):
            return load + self._lookup(right[1:])
        if isinstance(right, dict) and set(right) == {"set"} and cmp_op == _CMP_EQ:
            return load + self._anonymous(vkind, right["set"])
        return load + _cmp(self._scalar(vkind, right), cmp_op)

    def _scalar(self, vkind: str, value: Any) -> bytes:
        if vkind == "ifname" and isinstance(value, str):
            return _ifname(value)
        if vkind == "l4proto" and value in _L4:
            return bytes((_L4[value],))
        if vkind in ("ip", "ip6") and isinstance(value, str):
            raw = _addr(value)
            if len(raw) != (4 if vkind == "ip" else 16):
                raise NftError(f"nf_tables: {value} is not an {vkind} address")
            return raw
        if vkind == "port" and isinstance(value, int) and 0 <= value < 65536:
            return struct.pack("!H", value)
        raise NftError(f"nf_tables: value {value!r} for {vkind} not supported")

    def _prefix(self, left: dict[str, Any], prefix: dict[str, Any], op: int) -> bytes:
        """An address prefix: nft 1.0.6 loads only its bytes when it ends on a byte
        boundary, else the whole address through a mask (a /0 too)."""
        net = ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}")
        raw, plen = net.network_address.packed, net.prefixlen
        if plen and plen % 8 == 0:
            load, _, vkind = self._load(left, length=plen // 8)
            if vkind not in ("ip", "ip6") or len(raw) != (4 if vkind == "ip" else 16):
                raise NftError(f"nf_tables: prefix {net} against {left!r} not supported")
            return load + _cmp(raw[: plen // 8], op)
        load, size, vkind = self._load(left)
        if vkind not in ("ip", "ip6") or size != len(raw):
            raise NftError(f"nf_tables: prefix {net} against {left!r} not supported")
        bits = _expr(
            "bitwise",
            be32(1, _REG_1),
            be32(2, _REG_1),
            be32(3, size),
            _value(4, net.netmask.packed),
            _value(5, bytes(size)),
        )
        return load + bits + _cmp(raw, op)

    def _lookup(self, name: str) -> bytes:
        data = be32(2, _REG_1) + strz(1, name)
        sid = self._batch._set_ids.get((self._table, name))
        if sid is not None:
            data += be32(4, sid)
        return _expr("lookup", data)

    def _anonymous(self, vkind: str, items: list[Any]) -> bytes:
        if vkind == "l4proto":
            kind, keys = _ANON_L4, [bytes((_L4[i],)) for i in items]
        elif vkind == "icmpv6":
            kind, keys = _ANON_ICMP6, [bytes((_ICMP6[i],)) for i in items]
        else:
            raise NftError(f"nf_tables: a set of {vkind} values is not supported")
        sid = self._batch.anonymous_set(self._table, kind, keys)
        return _expr("lookup", be32(2, _REG_1), strz(1, "__set%d"), be32(4, sid))


def translate(batch: dict[str, Any]) -> tuple[Batch, str]:
    """The messages for one JSON batch, and the table it changes (for error messages)."""
    out = Batch()
    tables: list[str] = []
    for cmd in batch.get("nftables", []):
        ((verb, objs),) = cmd.items()
        if verb == "metainfo":
            continue
        ((kind, obj),) = objs.items()
        if verb not in ("add", "create") or obj.get("family") != "inet":
            raise NftError(f"nf_tables: command {verb} {kind} in family {obj.get('family')}")
        table = obj["name"] if kind == "table" else obj["table"]
        if table not in tables:
            tables.append(table)
        if kind == "table":
            out.table(table, create=verb == "create")
        elif kind == "set" and verb == "add":
            typ = obj["type"]
            out.set(
                table,
                obj["name"],
                typ if isinstance(typ, str) else " . ".join(typ),
                obj.get("flags", []),
            )
        elif kind == "chain" and verb == "add":
            out.chain(table, obj)
        elif kind == "rule" and verb == "add":
            out.rule(table, obj)
        elif kind == "element" and verb == "add":
            out.elements(table, obj["name"], obj["elem"])
        else:
            raise NftError(f"nf_tables: command {verb} {kind} not supported")
    return out, ", ".join(f"inet {t}" for t in tables) or "(none)"

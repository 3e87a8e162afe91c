"""`nft list ruleset`-style text of a compiled JSON ruleset, for `landgate plan`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _expr_text(e: dict[str, Any]) -> str:
    ((kind, body),) = e.items()
    if kind == "match":
        op = "" if body["op"] in ("==", "in") else body["op"] + " "
        return f"{_val_text(body['left'])} {op}{_val_text(body['right'])}"
    if kind in ("accept", "counter", "masquerade"):
        return kind
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    if kind == "reject":
        return "reject with " + (f"icmpx {body['expr']}" if body.get("expr") else body["type"])
    return f"{kind} {body}"


def _val_text(v: Any) -> str:
    if isinstance(v, dict):
        if "payload" in v:
            return f"{v['payload']['protocol']} {v['payload']['field']}"
        if "meta" in v:
            return f"meta {v['meta']['key']}"
        if "ct" in v:
            return f"ct {v['ct']['key']}"
        if "set" in v:
            return "{ " + ", ".join(_val_text(x) for x in v["set"]) + " }"
        if "prefix" in v:
            return f"{v['prefix']['addr']}/{v['prefix']['len']}"
        if "concat" in v:
            return " . ".join(_val_text(x) for x in v["concat"])
    if isinstance(v, list):
        return ",".join(_val_text(x) for x in v)
    if (
        isinstance(v, str)
        and not v.startswith("@")
        and any(c.isalpha() for c in v)
        and "." not in v
        and ":" not in v
    ):
        return v
    return f'"{v}"' if isinstance(v, str) and v == "" else str(v)


def render_nft_text(ruleset: Mapping[str, Any]) -> str:
    """An `nft list ruleset`-like rendering of the compiled batch, for `landgate plan`."""
    tables: dict[str, dict[str, Any]] = {}
    for cmd in ruleset.get("nftables", []):
        body = cmd.get("add") or cmd.get("create")  # the table is created, the rest added
        if not body:
            continue
        ((kind, obj),) = body.items()
        if kind == "table":
            tables.setdefault(obj["name"], {"sets": [], "chains": {}, "elements": {}})
            continue
        tbl = tables.setdefault(obj["table"], {"sets": [], "chains": {}, "elements": {}})
        if kind == "set":
            typ = obj["type"]
            typ = " . ".join(typ) if isinstance(typ, list) else typ
            tbl["sets"].append(
                f"set {obj['name']} {{ type {typ}; flags {', '.join(obj['flags'])}; }}"
            )
        elif kind == "chain":
            head = ""
            if "hook" in obj:
                head = (
                    f"type {obj['type']} hook {obj['hook']} priority {obj['prio']}; "
                    f"policy {obj['policy']};"
                )
            tbl["chains"][obj["name"]] = {"head": head, "rules": []}
        elif kind == "rule":
            text = " ".join(_expr_text(e) for e in obj["expr"])
            if obj.get("comment"):
                text += f"  # {obj['comment']}"
            tbl["chains"][obj["chain"]]["rules"].append(text)
        elif kind == "element":
            for e in obj["elem"]:
                tbl["elements"].setdefault(obj["name"], []).append(
                    f"{_val_text(e['elem']['val'])} timeout {e['elem']['timeout']}s"
                )
    lines: list[str] = []
    for name, tbl in tables.items():
        lines.append(f"table inet {name} {{")
        lines += [f"  {s}" for s in tbl["sets"]]
        for set_name, elems in tbl["elements"].items():
            lines.append(f"  # pinned at launch, {set_name}: {', '.join(elems)}")
        for cname, chain in tbl["chains"].items():
            lines.append(f"  chain {cname} {{")
            if chain["head"]:
                lines.append(f"    {chain['head']}")
            lines += [f"    {r}" for r in chain["rules"]]
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines)

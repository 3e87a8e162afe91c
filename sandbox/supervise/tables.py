"""Compile a policy, once, into the flat tables the C decision loop reads.

Policy semantics live in `sandbox.policy`; this module only lays the rules out
for C (DESIGN §4): exec command globs, network destinations (host names pinned
to addresses at launch), and the carve-out deny set for the open check
(device+inode pairs of the files that exist at launch, plus path globs for
files created later).  Rule indices in the tables point into `Tables.refs`,
so every event names the rule that decided it.

This module holds the entry point and the rows that follow from the policy and
the plan alone (memoized by tablememo), with how a rule is named on the denial
line.  What the file system says is sessionrows.py's (every session, from fswalk.py's
walks); the fsop check's rows are fsoprows.py's.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from sandbox._supervise import ffi, lib
from sandbox.errors import LaunchError
from sandbox.policy.baseline import QUIET_UNIX_SOCKETS
from sandbox.policy.compiled import compile_policy, ordered
from sandbox.policy.locate import presets_dir
from sandbox.policy.model import Policy, Rule

from .fsoprows import GITCFG_GLOBS, fsop_rows
from .sessionrows import session_rows
from .tablememo import memo_tables
from .tabletypes import RuleInfo, Tables

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _owner(file: str) -> str:
    """A policy file as its user knows it: `coding-agent preset` for a bundled preset
    (not its path inside site-packages), else the path (relative to the cwd when below it).
    Asked for every rule's denial line (130 of them for a preset): memoised per file and
    working directory, as each answer costs two realpaths (~5 ms a launch otherwise)."""
    try:
        cwd = os.getcwd()
    except OSError:
        return file  # no working directory (removed): the path as the policy names it
    return _owner_in(file, cwd)


@lru_cache(maxsize=64)
def _owner_in(file: str, _cwd: str) -> str:
    path = Path(file)
    try:
        if path.resolve().parent == presets_dir().resolve() and path.suffix == ".yaml":
            return f"{path.stem} preset"
    except OSError:
        pass
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        return file


def shown_ref(ri: RuleInfo) -> str:
    """The rule as the sandbox's denial line names it: `rule 1, coding-agent preset:69`,
    `default deny; .landgate.yaml:3`.  The audit entry keeps the full `ri.ref`."""
    if ri.origin == "infrastructure" or ri.source is None:
        if ri.rule is None and ri.ref.startswith("default deny"):
            return "default deny; implied"
        return ri.ref
    file, _, line = ri.source.rpartition(":")
    if not file or not line.isdigit():
        return ri.ref
    if ri.rule is None:
        effect = "deny" if ri.ref.startswith("default deny") else "allow"
        return f"default {effect}; {_owner(file)}:{line}"
    if ri.rule.origin != "policy":
        return ri.ref
    return f"rule {ri.rule.index}, {_owner(file)}:{line}"


def teaches_allow(ri: RuleInfo) -> bool:
    """A policy allow rule can admit what this rule denies: only a block's default deny.
    An explicit deny wins over every allow; a protected path yields only to an exact
    allow and landgate's key directory to none, so their lines carry no `allow` hint."""
    return ri.rule is None and ri.origin is None and ri.ref.startswith("default deny")


def _effect(e: str) -> int:
    return int(lib.LG_EFFECT_ALLOW if e == "allow" else lib.LG_EFFECT_DENY)


def compile_tables(policy: Policy, plan_info: Mapping[str, Any] | None = None) -> Tables:
    """Lay the policy out for C.

    plan_info (from the planner, all optional):
      open_check: bool         install the carve-out open check (no mount namespace)
      carve_outs: [(path, access)]  files to deny by device+inode (default: globbed here)
      landlock_ruleset_fd: int the sandbox's Landlock ruleset (the opener thread restricts
                               itself with it)
      uid, gid: int            credentials the opener thread takes (the sandbox's)
      write_trees: [path]      every tree the sandbox can write (Landlock write rights beneath
                               it); absent or None = not known.  An exec through a symlink or
                               of a #! script outside all of them skips the verified path
                               (supervise_exec_stable.c); only the planner may say so
      resolve_hosts: bool      pin host-name rules with getaddrinfo now (default True)
      path_env: str            $PATH to look the deny rules' programs up in (default:
                               landgate's own), besides the standard program directories
      private_netns: (dev, ino) the sandbox's own network namespace (its nsfs file): a
                               loopback destination on a socket of that namespace is the
                               sandbox's private loopback, always allowed (DESIGN §3)
      infrastructure: [(ip, port, reason)]  landgate's own services the sandbox must reach
                               (the DNS view): always allowed, judged before the policy's
                               rules, recorded with rule `reason` ("landgate DNS view")
      bind_later: bool         leave landlock_ruleset_fd, write_trees and private_netns to
                               Tables.bind (the child is still being built); the tables
                               cannot start a supervisor before that
      infrastructure_deny: [(cidr, port, reason)]  landgate's own services the sandbox must
                               never reach (a `landgate ui` dashboard): always denied,
                               judged before the policy's rules (its localhost allows too)
    """
    info = _plan_info(plan_info)
    # The policy's own rows are compiled once per policy and plan facts (tablememo); what
    # the file system says (denied files' identities, trees, programs, pinned hosts) is
    # looked up again for every session, on a fresh copy of the struct.
    tables = memo_tables(policy, info, _compile_pure)
    session_rows(tables, policy, info)
    if not info.get("bind_later"):
        ruleset_fd = info.get("landlock_ruleset_fd")
        tables.bind(
            ruleset_fd=int(ruleset_fd) if ruleset_fd is not None else None,
            write_trees=info.get("write_trees"),
            private_netns=info.get("private_netns"),
        )
    return tables


def _compile_pure(policy: Policy, info: Mapping[str, Any]) -> Tables:
    """The tables' rows that follow from the policy and `info` alone (tablememo.PURE_KEYS
    of it): no file-system lookup here; session_rows adds those, every session."""
    keep: list[Any] = []
    rules: list[RuleInfo] = []

    def cstr(s: str) -> Any:
        b = ffi.new("char[]", s.encode("utf-8", "surrogateescape"))
        keep.append(b)
        return b

    def add_rule(r: Rule) -> int:
        rules.append(RuleInfo(ref=r.ref(), action=r.action, rule=r, source=str(r.source)))
        return len(rules) - 1

    def add_default(action: str) -> tuple[int, int]:
        blk = policy.block(action)
        where = f" ({blk.default_source})" if blk.default_source else " (implied)"
        ref = f"default {blk.default_effect} of {action}{where}"
        rules.append(
            RuleInfo(
                ref=ref,
                action=action,
                rule=None,
                source=str(blk.default_source) if blk.default_source else None,
            )
        )
        return len(rules) - 1, _effect(blk.default_effect)

    t = ffi.new("struct lg_tables *")
    keep.append(t)
    t.open_ruleset_fd = -1  # never fd 0 (the zeroed struct's) until bound

    # exec, path and unix-socket globs: the policy's compiled tables (sandbox.policy.compiled),
    # the very arrays `explain` judges with; their rule indices come first in `rules`.
    comp = compile_policy(policy)
    keep.append(comp)
    for r in comp.rules:
        rules.append(RuleInfo(ref=r.ref(), action=r.action, rule=r, source=str(r.source)))
    t.exec, t.n_exec, t.syntax = comp.c.exec, comp.c.n_exec, comp.c.syntax
    t.paths, t.n_paths = comp.c.paths, comp.c.n_paths
    t.exec_default_rule, t.exec_default_effect = add_default("shell_exec")
    unix_globs = {
        id(comp.rules[comp.c.net[k].rule]): comp.c.net[k].glob for k in range(comp.c.n_net)
    }

    # network
    net_rows: list[tuple[int, int, int, int, int, bytes, str | None, int]] = []
    for r in ordered(policy.block("network").rules):
        d = r.destination
        if d is None:
            continue
        idx = comp.rules.index(r) if d.kind == "unix" else add_rule(r)
        eff = _effect(r.effect)
        port = -1 if d.port is None else int(d.port)
        if d.kind == "any":
            net_rows.append((lib.LG_NET_ANY, eff, 0, 0, port, b"", None, idx))
        elif d.kind in ("ip", "cidr") and d.network is not None:
            n = d.network
            fam = socket.AF_INET if n.version == 4 else socket.AF_INET6
            net_rows.append(
                (lib.LG_NET_IP, eff, fam, n.prefixlen, port, n.network_address.packed, None, idx)
            )
        elif d.kind == "localhost":
            net_rows.append(
                (
                    lib.LG_NET_IP,
                    eff,
                    socket.AF_INET,
                    8,
                    port,
                    ipaddress.ip_address("127.0.0.0").packed,
                    None,
                    idx,
                )
            )
            net_rows.append(
                (
                    lib.LG_NET_IP,
                    eff,
                    socket.AF_INET6,
                    128,
                    port,
                    ipaddress.ip_address("::1").packed,
                    None,
                    idx,
                )
            )
        elif d.kind == "host" and d.host:
            net_rows.append((lib.LG_NET_HOST, eff, 0, 0, port, b"", d.host.lower(), idx))
        elif d.kind == "wildcard" and d.host:
            net_rows.append((lib.LG_NET_WILDCARD, eff, 0, 0, port, b"", d.host.lower(), idx))
        elif d.kind == "unix":
            net_rows.append((lib.LG_NET_UNIX, eff, 0, 0, -1, b"", None, idx))
    # Denies first: the C check takes the first infrastructure row that matches, and a
    # dashboard's port must stay denied even if an allowed service ever shared it.
    infra = [
        (ipaddress.ip_network(net), port, reason, lib.LG_EFFECT_DENY)
        for net, port, reason in info.get("infrastructure_deny", ())
    ] + [
        (ipaddress.ip_network(ip), port, reason, lib.LG_EFFECT_ALLOW)
        for ip, port, reason in info.get("infrastructure", ())
    ]
    inf = ffi.new("struct lg_net_rule[]", max(1, len(infra)))
    keep.append(inf)
    for i, (net, port, reason, effect) in enumerate(infra):
        if not 0 < int(port) < 65536:
            raise LaunchError(f"infrastructure destination {net}:{port}: not a port")
        rules.append(
            RuleInfo(
                ref=str(reason), action="network", rule=None, source=None, origin="infrastructure"
            )
        )
        inf[i].kind = lib.LG_NET_IP
        inf[i].effect = effect
        inf[i].family = socket.AF_INET if net.version == 4 else socket.AF_INET6
        inf[i].prefix = net.prefixlen
        inf[i].port = int(port)
        for k, b in enumerate(net.network_address.packed):
            inf[i].addr[k] = b
        inf[i].pattern = ffi.NULL
        inf[i].rule = len(rules) - 1
    t.infra = inf
    t.n_infra = len(infra)

    nr = ffi.new("struct lg_net_rule[]", max(1, len(net_rows)))
    keep.append(nr)
    for i, (kind, eff, family, prefix, port, addr, pattern, idx) in enumerate(net_rows):
        nr[i].kind = kind
        nr[i].effect = eff
        nr[i].family = family
        nr[i].prefix = prefix
        nr[i].port = port
        for k, b in enumerate(addr):
            nr[i].addr[k] = b
        nr[i].pattern = cstr(pattern) if pattern is not None else ffi.NULL
        if kind == lib.LG_NET_UNIX:
            nr[i].glob = unix_globs[id(comp.rules[idx])]
        nr[i].rule = idx
    t.net = nr
    t.n_net = len(net_rows)
    t.net_default_rule, t.net_default_effect = add_default("network")

    open_check = bool(info.get("open_check", False))
    fsop_check = bool(info.get("fsop_check", False))
    t.fsop_check = 1 if fsop_check else 0
    fsop_rows(t, comp, fsop_check, info.get("gitcfg_globs", GITCFG_GLOBS), str(policy.home), keep)
    t.open_check = 1 if open_check else 0
    # An open the supervisor performed and Landlock refused is recorded under the
    # file_read / file_write default when that default denies (Landlock grants nothing
    # more than the allow rules): "default deny of file_read (policy.yaml:3)".
    for action, field_name in (
        ("file_read", "read_default_rule"),
        ("file_write", "write_default_rule"),
    ):
        rule_idx = -1
        if open_check and policy.block(action).default_effect == "deny":
            rule_idx = add_default(action)[0]
        setattr(t, field_name, rule_idx)
    t.file_access_all = 1 if policy.audit.file_access == "all" else 0
    t.open_uid = int(info.get("uid", -1))
    t.open_gid = int(info.get("gid", -1))
    quiet = ffi.new("char *[]", max(1, len(QUIET_UNIX_SOCKETS)))
    keep.append(quiet)
    for i, (path, _why) in enumerate(QUIET_UNIX_SOCKETS):
        quiet[i] = cstr(path)
    t.quiet_unix = quiet
    t.n_quiet_unix = len(QUIET_UNIX_SOCKETS)
    # After add_default: the default rules it appended need their refs too.
    refs = ffi.new("char *[]", max(1, len(rules)))
    keep.append(refs)
    hints = ffi.new("unsigned char[]", max(1, len(rules)))
    keep.append(hints)
    for i, ri in enumerate(rules):
        refs[i] = cstr(shown_ref(ri))
        hints[i] = 1 if teaches_allow(ri) else 0
    t.refs = refs
    t.n_refs = len(rules)
    t.hints = hints
    return Tables(
        t,
        rules,
        [],
        open_check,
        fsop_check,
        landlock=str(info.get("landlock", "present")),
        keep=keep,
    )


def _plan_info(plan_info: Any) -> dict[str, Any]:
    """A mapping as is; a sandbox.plan.Plan read for the keys above."""
    if plan_info is None:
        return {}
    if isinstance(plan_info, Mapping):
        return dict(plan_info)
    info: dict[str, Any] = {}
    sup = getattr(plan_info, "supervisor", None)
    info["open_check"] = bool(getattr(sup, "open_check", False)) and not getattr(
        plan_info, "use_namespaces", False
    )
    for key in ("landlock_ruleset_fd", "uid", "gid"):
        if hasattr(plan_info, key):
            info[key] = getattr(plan_info, key)
    return info

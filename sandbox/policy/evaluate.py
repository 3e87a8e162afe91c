"""The one decision function: `decide(policy, action, target, context)`.

Every layer that decides in Python (explain, simulation, the supervisor's
slow path, the audit trail's `suggest`) calls this, and the planner compiles
the same patterns (sandbox.policy.patterns) into kernel rules, so the answer
is the same everywhere (DESIGN §3):

  1. a matching `deny` wins over any `allow` (forbid overrides permit);
  2. else a matching `allow` allows;
  3. else the block's defaultEffect (missing = deny).

One refinement (DESIGN §2): a protected-path deny yields to a policy `allow`
that names that exact path (a glob-free pattern equal to the path, or a
glob-free directory pattern that is itself the protected directory).  The key
directory's rules never yield (`Rule.overridable` False).

Speed: each policy gets a compiled index on first use (stored in
`policy.cache`): per action, the rules with their pre-compiled matchers.
A decision is one pass over its block's rules.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sandbox.errors import UsageError
from sandbox.policy.model import ACTIONS, Decision, DecisionContext, Destination, Policy, Rule
from sandbox.policy.patterns import (
    NetTarget,
    command_line,
    command_regex,
    has_glob,
    match_destination,
    match_path,
    normalize_path,
    parse_target,
    path_regex,
    split_command,
)

Target = str | Sequence[str]

# Shells whose `-c STRING` is judged as the command lines it runs (DESIGN §3).
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish"})
_SHELL_DEPTH = 4  # sh -c "sh -c '...'" nests this deep at most before we stop unwrapping
_SHELL_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;", "|&", "{", "}"})
_SHELL_KEYWORDS = frozenset(
    {
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "while",
        "until",
        "for",
        "case",
        "esac",
        "!",
        "time",
        "exec",
        "command",
        "nohup",
    }
)

# Which rule explains a decision when several decide the same way: the user's own
# rule first, then landgate's protected paths, then the baseline.
_ORIGIN_ORDER = {"policy": 0, "protected": 1, "baseline": 2}

NO_MATCH = "no match"


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A block's rules with their matchers, built once per policy."""

    rules: tuple[Rule, ...]
    matchers: tuple[Callable[..., bool], ...]
    # (start, end, kind, combined fullmatch): one alternation regex per run of up to
    # _CHUNK rules of the same kind, so a miss costs one C-level regex call per chunk
    # instead of one Python call per rule.  kind 0: the path / command line,
    # kind 1: the exe-path form of a command line.
    chunks: tuple[tuple[int, int, int, Callable[..., object]], ...] = ()
    no_match: tuple[tuple[Rule, str], ...] = ()
    # network: candidate indices by exact host, by wildcard suffix (".npmjs.org"),
    # unix rules, and address-like rules (ip, cidr, localhost, any) always checked
    net_hosts: dict[str, tuple[int, ...]] | None = None
    net_suffixes: dict[str, tuple[int, ...]] | None = None
    net_unix: tuple[int, ...] = ()
    net_addr: tuple[int, ...] = ()
    # file actions: policy allows with glob-free patterns (candidates to override a protected deny)
    exact_allows: tuple[Rule, ...] = ()
    # network: for rules with a port, the same destination without one (to explain a port miss)
    portless: tuple[Destination | None, ...] = ()


_CHUNK = 32


def _chunks(
    regexes: list[re.Pattern[str]], kinds: list[int]
) -> tuple[tuple[int, int, int, Callable[..., object]], ...]:
    out = []
    start = 0
    n = len(regexes)
    while start < n:
        end = start + 1
        while end < n and end - start < _CHUNK and kinds[end] == kinds[start]:
            end += 1
        combined = "|".join(f"(?:{rx.pattern})" for rx in regexes[start:end])
        out.append((start, end, kinds[start], re.compile(combined, re.DOTALL).fullmatch))
        start = end
    return tuple(out)


def _compile_block(policy: Policy, action: str) -> _Compiled:
    rules = tuple(
        sorted(policy.blocks[action].rules, key=lambda r: (_ORIGIN_ORDER.get(r.origin, 3), r.index))
    )
    no_match = tuple((r, NO_MATCH) for r in rules)
    matchers: list[Callable[..., bool]] = []
    if action in ("file_read", "file_write"):
        regexes = []
        for r in rules:
            assert r.path is not None, f"{action} rule without a path: {r}"
            regexes.append(path_regex(r.path))
        matchers = [rx.fullmatch for rx in regexes]  # type: ignore[misc]
        exact = tuple(
            r
            for r in rules
            if r.origin == "policy"
            and r.effect == "allow"
            and r.path is not None
            and r.path.anchored
            and not has_glob(r.path.glob)
        )
        return _Compiled(
            rules,
            tuple(matchers),
            exact_allows=exact,
            chunks=_chunks(regexes, [0] * len(regexes)),
            no_match=no_match,
        )
    if action == "shell_exec":
        regexes = []
        kinds = []
        for r in rules:
            assert r.command is not None
            regexes.append(command_regex(r.command))
            kinds.append(1 if "/" in r.command.program else 0)
        matchers = [rx.fullmatch for rx in regexes]  # type: ignore[misc]
        return _Compiled(rules, tuple(matchers), chunks=_chunks(regexes, kinds), no_match=no_match)
    portless: list[Destination | None] = []
    for r in rules:
        assert r.destination is not None
        d = r.destination
        matchers.append(lambda t, names, d=d: match_destination(d, t, names))
        portless.append(replace(d, port=None) if d.port is not None and d.kind != "unix" else None)
    hosts: dict[str, list[int]] = {}
    suffixes: dict[str, list[int]] = {}
    unix: list[int] = []
    addr: list[int] = []
    for i, r in enumerate(rules):
        dest = r.destination
        assert dest is not None
        if dest.kind == "host" and dest.host:
            hosts.setdefault(dest.host, []).append(i)
        elif dest.kind == "wildcard" and dest.host:
            suffixes.setdefault(dest.host[1:], []).append(i)
        elif dest.kind == "unix":
            unix.append(i)
        else:
            addr.append(i)
    return _Compiled(
        rules,
        tuple(matchers),
        portless=tuple(portless),
        no_match=no_match,
        net_hosts={k: tuple(v) for k, v in hosts.items()},
        net_suffixes={k: tuple(v) for k, v in suffixes.items()},
        net_unix=tuple(unix),
        net_addr=tuple(addr),
    )


def _net_candidates(comp: _Compiled, t: NetTarget, names: tuple[str, ...]) -> list[int]:
    """Rules that may match `t` regardless of port, found by index instead of a full scan."""
    if t.unix is not None:
        return list(comp.net_unix)
    assert comp.net_hosts is not None and comp.net_suffixes is not None
    cand: set[int] = set(comp.net_addr)
    for raw in (t.host,) if t.host is not None else names:
        if not raw:
            continue
        name = raw.lower().rstrip(".")
        cand.update(comp.net_hosts.get(name, ()))
        dot = name.find(".")
        while dot >= 0:
            cand.update(comp.net_suffixes.get(name[dot:], ()))
            dot = name.find(".", dot + 1)
    return sorted(cand)


def _hits(comp: _Compiled, subjects: tuple[str | None, str | None]) -> list[int]:
    """Indices of the rules whose regex matches (subjects[kind] per chunk), in rule order."""
    hits: list[int] = []
    ms = comp.matchers
    for start, end, kind, combined in comp.chunks:
        subject = subjects[kind]
        if subject is None or combined(subject) is None:
            continue
        for i in range(start, end):
            if ms[i](subject) is not None:
                hits.append(i)
    return hits


def compiled_index(policy: Policy) -> dict[str, _Compiled]:
    """The policy's per-action compiled rules (built on first use, then cached)."""
    index = policy.cache.get("evaluate.index")
    if index is None:
        index = {a: _compile_block(policy, a) for a in ACTIONS}
        policy.cache["evaluate.index"] = index
    return index


# ---------------------------------------------------------------------------
# explanations


def short_ref(rule: Rule) -> str:
    """'rule 3 (*/.env)', 'baseline rule 7 (/etc/shadow)'."""
    prefix = "rule" if rule.origin == "policy" else f"{rule.origin} rule"
    return f"{prefix} {rule.index} ({rule.pattern})"


def describe_pattern(rule: Rule) -> str:
    """What a rule's pattern means, in words ("a file named .env at any depth")."""
    p = rule.path
    if p is not None:
        if not p.anchored:
            if "/" not in p.glob and not has_glob(p.glob):
                return (
                    f"a directory named {p.glob} at any depth and everything beneath it"
                    if p.directory
                    else f"anything named {p.glob} at any depth"
                )
            if "/" not in p.glob:
                return (
                    f"a directory matching {p.glob} at any depth and everything beneath it"
                    if p.directory
                    else f"anything named like {p.glob} at any depth"
                )
            if p.glob.startswith("*/") and "/" not in p.glob[2:] and not has_glob(p.glob[2:]):
                # SafeClaw's `*/.env`: the name inside some directory, i.e. at any depth
                return f"anything named {p.glob[2:]} at any depth"
            return f"paths ending in {p.glob}{'/ and beneath' if p.directory else ''}, at any depth"
        if p.directory:
            return f"the directory {p.glob} and everything beneath it"
        if has_glob(p.glob):
            return f"paths matching {p.glob}"
        return f"the path {p.glob}"
    c = rule.command
    if c is not None:
        extra = (
            "" if rule.inherit or rule.effect == "deny" else " (descendants need their own allow)"
        )
        if has_glob(c.glob):
            return f"command lines matching {c.glob!r}{extra}"
        return f"exactly the command line {c.glob!r}{extra}"
    d = rule.destination
    if d is not None:
        port = "any port" if d.port is None else f"port {d.port}"
        if d.kind == "unix":
            return f"unix sockets matching {d.unix_glob}"
        if d.kind == "any":
            return f"any host, {port}"
        if d.kind == "localhost":
            return f"the loopback (127.0.0.0/8, ::1), {port}"
        if d.kind == "wildcard":
            return f"subdomains of {d.host[2:] if d.host else '?'}, {port}"
        if d.kind in ("ip", "cidr"):
            return f"addresses in {d.network}, {port}"
        return f"the host {d.host}, {port}"
    return rule.pattern


def _default_reason(policy: Policy, action: str) -> str:
    block = policy.blocks[action]
    if action not in policy.declared_actions:
        return f"no rule matches, and the policy has no {action} block: implied deny"
    if block.default_source is None:
        return "no rule matches; the block has no defaultEffect, so deny"
    return f"no rule matches; the block's defaultEffect is {block.default_effect}"


def _overrides(allow: Rule, protected: Rule, path: str) -> bool:
    """Does the glob-free policy `allow` name exactly what `protected` protects here?"""
    ap = allow.path
    assert ap is not None and protected.path is not None
    if not ap.directory:
        return ap.glob == path
    return (path == ap.glob or path.startswith(ap.glob.rstrip("/") + "/")) and match_path(
        protected.path, ap.glob
    )


def _conclude(
    policy: Policy,
    action: str,
    target: str,
    comp: _Compiled,
    hits: list[int],
    reasons: dict[int, str],
    what: str,
) -> Decision:
    """Apply the three rules to the matching rules (`hits`, indices in rule order)."""
    rules = comp.rules
    overridden: dict[int, Rule] = {}
    deciding: Rule | None = None
    deciding_i = -1
    for i in hits:
        r = rules[i]
        if r.effect != "deny":
            continue
        if r.origin == "protected" and r.overridable:
            by = next((a for a in comp.exact_allows if _overrides(a, r, target)), None)
            if by is not None:
                overridden[i] = by
                continue
        deciding, deciding_i = r, i
        break
    first_allow = next((i for i in hits if rules[i].effect == "allow"), -1)
    if deciding is not None:
        effect = "deny"
        why = f"{what} matches {describe_pattern(deciding)}"
        if deciding.origin == "protected":
            why += (
                "; a protected path (only an allow naming this exact path overrides it)"
                if deciding.overridable
                else "; a protected path no policy rule can open"
            )
        if first_allow >= 0:
            why += "; an explicit deny wins over any allow"
    elif first_allow >= 0:
        effect = "allow"
        deciding_i = first_allow
        deciding = rules[deciding_i]
        why = f"{what} matches {describe_pattern(deciding)}, and no deny rule matches"
        if overridden:
            first = next(iter(overridden))
            why += (
                f" ({short_ref(rules[first])} protects it, but {short_ref(overridden[first])}"
                " names this exact path)"
            )
    else:
        effect = policy.blocks[action].default_effect
        why = _default_reason(policy, action)
    # Every other rule, with why it did not decide: start from "no match" for all
    # (precomputed) and overwrite the few that matched or have a better reason.
    considered = list(comp.no_match)
    for i, reason in reasons.items():
        considered[i] = (rules[i], reason)
    for i in hits:
        r = rules[i]
        if i in overridden:
            considered[i] = (r, f"matched, but {short_ref(overridden[i])} names this exact path")
        elif deciding is None:
            considered[i] = (r, "matched")
        elif r.effect == deciding.effect:
            considered[i] = (r, f"matched too; {short_ref(deciding)} decided first")
        else:
            considered[i] = (
                r,
                f"matched, but deny {short_ref(deciding)} wins (forbid overrides permit)",
            )
    if deciding_i >= 0:
        del considered[deciding_i]
    return Decision(
        action=action,
        target=target,
        effect=effect,  # type: ignore[arg-type]
        rule=deciding,
        reason=why,
        default_source=policy.blocks[action].default_source if deciding is None else None,
        considered=tuple(considered),
    )


# ---------------------------------------------------------------------------
# per-action deciders


def _decide_path(policy: Policy, action: str, target: Target, ctx: DecisionContext) -> Decision:
    if not isinstance(target, str):
        raise UsageError(f"{action} takes a path, not {type(target).__name__}")
    if not target or "\x00" in target:
        raise UsageError(f"{action}: empty or malformed path {target!r}")
    base = str(ctx.cwd) if ctx.cwd is not None else str(policy.workspace)
    path = normalize_path(target, base=base, home=str(policy.home))
    comp = compiled_index(policy)[action]
    return _conclude(policy, action, path, comp, _hits(comp, (path, None)), {}, path)


def _shell_command_string(argv: list[str]) -> str | None:
    """The STRING of `sh -c STRING ...` (also `bash -lc`, `sh -ec`), else None."""
    if posixpath.basename(argv[0]) not in SHELLS:
        return None
    i = 1
    if posixpath.basename(argv[0]) == "busybox":
        if len(argv) < 2 or argv[1] not in ("sh", "ash"):
            return None
        i = 2
    found = False
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-", "--"):
        if not argv[i].startswith("--") and "c" in argv[i][1:]:
            found = True
        i += 1
    if found and i < len(argv):
        return argv[i]
    return None


def shell_simple_commands(script: str) -> list[list[str]]:
    """Split a shell command string into the simple commands it runs (best effort).

    Separators ; && || | & ( ) and newlines; leading VAR=value assignments and
    keywords (if, then, exec, ...) are skipped.  Command substitutions are not
    unwrapped here: the programs they start meet their own exec check.
    """
    lex = shlex.shlex(script.replace("\n", ";"), posix=True, punctuation_chars=";&|()")
    lex.whitespace_split = True
    commands: list[list[str]] = []
    current: list[str] = []
    try:
        tokens = list(lex)
    except ValueError:
        tokens = script.replace("\n", ";").split()
    for tok in tokens:
        if tok in _SHELL_SEPARATORS:
            if current:
                commands.append(current)
            current = []
            continue
        if not current and (
            tok in _SHELL_KEYWORDS or ("=" in tok and tok.split("=", 1)[0].isidentifier())
        ):
            continue
        current.append(tok)
    if current:
        commands.append(current)
    return commands


def _decide_exec(policy: Policy, target: Target, ctx: DecisionContext, depth: int = 0) -> Decision:
    argv = split_command(target)
    if not argv:
        raise UsageError("shell_exec: empty command")
    line = command_line(argv)
    comp = compiled_index(policy)["shell_exec"]
    exe = ctx.resolved_exe or (argv[0] if "/" in argv[0] else None)
    exe_line = " ".join([exe, *argv[1:]]) if exe else None
    hits = _hits(comp, (line, exe_line))
    decision = _conclude(policy, "shell_exec", line, comp, hits, {}, f"`{line}`")
    if decision.effect == "deny" or depth >= _SHELL_DEPTH:
        return decision
    script = _shell_command_string(argv)
    if script is None:
        return decision
    # The shell is allowed; each program its -c string starts must be allowed too.
    for sub in shell_simple_commands(script):
        inner = _decide_exec(policy, sub, DecisionContext(cwd=ctx.cwd), depth + 1)
        if inner.effect == "deny":
            return Decision(
                action="shell_exec",
                target=line,
                effect="deny",
                rule=inner.rule,
                reason=f"the shell's -c string runs `{inner.target}`: {inner.reason}",
                default_source=inner.default_source,
                considered=(
                    (decision.rule, f"allows the shell itself; `{inner.target}` it runs is denied"),
                    *inner.considered,
                )
                if decision.rule
                else inner.considered,
            )
    return decision


def _decide_network(policy: Policy, target: Target, ctx: DecisionContext) -> Decision:
    if not isinstance(target, str):
        raise UsageError(
            f"network takes host[:port], ip[:port], [v6]:port or unix:/path, "
            f"not {type(target).__name__}"
        )
    try:
        t: NetTarget = parse_target(target)
    except ValueError as exc:
        raise UsageError(f"network: {exc}") from None
    comp = compiled_index(policy)["network"]
    names = tuple(ctx.names)
    cand = _net_candidates(comp, t, names)
    hits = [i for i in cand if comp.matchers[i](t, names)]
    hit_set = set(hits)
    reasons: dict[int, str] = {}
    for i in cand:
        pl = comp.portless[i]
        if pl is not None and i not in hit_set and match_destination(pl, t, names):
            port = comp.rules[i].destination.port  # type: ignore[union-attr]
            reasons[i] = f"host matches, but the rule is for port {port} and the target names " + (
                "no port" if t.port is None else f"port {t.port}"
            )
    what = t.text + (f" (known as {', '.join(names)})" if names and t.ip is not None else "")
    return _conclude(policy, "network", t.text, comp, hits, reasons, what)


def decide(
    policy: Policy, action: str, target: Target, context: DecisionContext | None = None
) -> Decision:
    """Decide one action against the policy and explain the decision.

    file_read / file_write: a path; relative paths join `context.cwd` (default:
    the workspace), `~/` expands to the policy's home, `..` collapses
    lexically.  Pass the kernel-resolved path when there is one.
    shell_exec: a command line (shell quoting) or an argv list; argv[0] is
    reduced to its basename, and patterns naming a path match
    `context.resolved_exe`.  `sh -c STRING` is also judged by each command in
    STRING.
    network: host, host:port, ip, ip:port, [v6]:port or unix:/path; an IP is
    also matched by host rules through `context.names`.
    Raises UsageError for an unknown action or a malformed target.
    """
    ctx = context or DecisionContext()
    if action in ("file_read", "file_write"):
        return _decide_path(policy, action, target, ctx)
    if action == "shell_exec":
        return _decide_exec(policy, target, ctx)
    if action == "network":
        return _decide_network(policy, target, ctx)
    raise UsageError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")

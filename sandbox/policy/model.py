"""The policy model: what a loaded policy is, and what a decision is.

Every later layer (the Landlock compiler, the supervisor's tables, the audit
trail, `explain`, simulation's `suggest`) reads these types, so they are the
contract between packages.  All are frozen; a Policy never changes after load.

Semantics (DESIGN §3), the same everywhere:
  1. an explicit `deny` that matches wins over any `allow` (forbid overrides permit);
  2. else an explicit `allow` that matches allows;
  3. else the block's `defaultEffect` (missing = deny).
Protected paths (DESIGN §2) are the one refinement: they are denies that an
`allow` naming that exact path (no glob) overrides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path

from sandbox.record import Record, field

# typing costs ~2 ms at import (issue 19); annotations are never evaluated
# (`from __future__ import annotations`): the type checker, which reads TYPE_CHECKING as
# True, sees each alias below as its Literal; at run time it names `str`, so that a
# module importing it still finds it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    Effect = Literal["allow", "deny"]
    Mode = Literal["enforce", "simulate"]
else:
    Effect = Mode = str
ACTIONS: tuple[str, ...] = ("file_read", "file_write", "shell_exec", "network")

# Where a rule came from: the user's policy, the built-in `system` baseline,
# or landgate's protected paths.
if TYPE_CHECKING:
    Origin = Literal["policy", "baseline", "protected"]
else:
    Origin = str


class SourceRef(Record):
    """A place in a policy file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class PathPattern(Record):
    """A file pattern, expanded against the workspace and home.

    `glob` is absolute ("/home/u/ws/src/**") when `anchored`, else a pattern
    matched against the path's trailing components at any depth (".env",
    "node_modules/**").  `directory` is the trailing-`/` form: the directory and
    everything beneath.  `base` is the longest absolute directory with no glob
    characters that contains every match (for Landlock path-beneath rules);
    None for unanchored patterns, which can match anywhere.
    """

    raw: str
    glob: str
    anchored: bool
    directory: bool
    base: str | None


class CommandPattern(Record):
    """A command-line glob over argv joined by single spaces, argv[0] as its basename."""

    raw: str
    glob: str
    program: str  # the first word of the pattern (may contain glob characters)


if TYPE_CHECKING:
    DestinationKind = Literal["host", "wildcard", "ip", "cidr", "localhost", "unix", "any"]
else:
    DestinationKind = str


class Destination(Record):
    """A network destination pattern.

    `port` None means any port.  `network` is set for ip/cidr kinds; for
    `localhost` it is unset and the matcher uses 127.0.0.0/8 and ::1.
    `host` is the lower-cased name for host/wildcard kinds ("*.npmjs.org" keeps
    its "*."), `unix_glob` the path glob for unix sockets.
    """

    raw: str
    kind: DestinationKind
    host: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None
    unix_glob: str | None = None


class Rule(Record):
    """One rule of an action block; `index` is 1-based within its block."""

    action: str
    index: int
    effect: Effect
    pattern: str
    source: SourceRef
    origin: Origin = "policy"
    path: PathPattern | None = None
    command: CommandPattern | None = None
    destination: Destination | None = None
    inherit: bool = True  # shell_exec: an allow admits the process's descendants
    # Protected paths only: False when no policy allow may override the deny
    # (landgate's key directory); True lets an allow naming the exact path win.
    overridable: bool = True
    comment: str | None = None  # the rule's `comment:`, shown by check/plan
    # file_read allow only (`exec: true`): programs beneath the path may also be executed
    # (Landlock EXECUTE).  Which command lines run is still shell_exec's decision.
    execute: bool = False

    def ref(self) -> str:
        """'rule 4, policy.yaml:21' (or the baseline / protected-path origin)."""
        if self.origin == "policy":
            return f"rule {self.index}, {self.source}"
        return f"{self.origin} rule {self.index} ({self.pattern})"


class ActionBlock(Record):
    action: str
    default_effect: Effect
    rules: tuple[Rule, ...]
    source: SourceRef
    default_source: SourceRef | None = None  # where defaultEffect is written; None = implied deny


_ENV_MATCHERS: dict[tuple[tuple[str, ...], ...], tuple[Any, Any, Any]] = {}


class _StarMatcher:
    """`any(fnmatchcase(name, p) for p in patterns)` for patterns of literal characters with
    `*` only at their ends (`X`, `*X`, `X*`, `*X*`: every default secret pattern): set,
    prefix, suffix and substring tests.  The regex the general case compiles costs ~0.4 ms
    per launch (issue 19); this costs none."""

    __slots__ = ("contains", "exact", "prefixes", "suffixes")

    def __init__(self, patterns: tuple[str, ...]) -> None:
        exact: set[str] = set()
        pre: list[str] = []
        suf: list[str] = []
        mid: list[str] = []
        for p in patterns:
            body = p.strip("*")
            if p.startswith("*") and p.endswith("*") and len(p) >= 2:
                mid.append(body)  # `*` and `**` too: body "" is in every name
            elif p.startswith("*"):
                suf.append(body)
            elif p.endswith("*"):
                pre.append(body)
            else:
                exact.add(p)
        self.exact = frozenset(exact)
        self.prefixes, self.suffixes, self.contains = tuple(pre), tuple(suf), tuple(mid)

    @staticmethod
    def fits(patterns: tuple[str, ...]) -> bool:
        """No `?`, no class, no `*` inside (fnmatch has no escape character: the rest is
        literal)."""
        return all("?" not in p and "[" not in p and "*" not in p.strip("*") for p in patterns)

    def match(self, name: str) -> bool:
        return (
            name in self.exact
            or name.startswith(self.prefixes)
            or name.endswith(self.suffixes)
            or any(c in name for c in self.contains)
        )


def _env_matchers(
    deny: tuple[str, ...], allow: tuple[str, ...], secret: tuple[str, ...]
) -> tuple[Any, Any, Any]:
    """One matcher per list, exactly `any(fnmatchcase(name, p) for p in list)` (secret
    patterns upper-cased, as `passes` matches them); None for an empty list.  A list of
    star-at-the-ends patterns is a _StarMatcher, any other one compiled regex.  Made once
    per distinct set of lists, not per variable and launch."""
    key = (deny, allow, secret)
    got = _ENV_MATCHERS.get(key)
    if got is None:

        def one(patterns: tuple[str, ...]) -> Any:
            if not patterns:
                return None
            if _StarMatcher.fits(patterns):
                return _StarMatcher(patterns)
            import re
            from fnmatch import translate

            return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))

        got = (one(tuple(deny)), one(tuple(allow)), one(tuple(p.upper() for p in secret)))
        if len(_ENV_MATCHERS) >= 64:
            _ENV_MATCHERS.clear()
        _ENV_MATCHERS[key] = got
    return got


class Environment(Record):
    """Which environment variables reach the agent (DESIGN §3).

    By default everything passes except names that look like secrets
    (`secret_patterns`); names matching `allow` pass even then; names matching
    `deny` never pass; `set` adds or overrides values.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    set: Mapping[str, str] = field(default_factory=dict)
    pass_by_default: bool = True
    secret_patterns: tuple[str, ...] = (
        "*_TOKEN",
        "*_TOKEN_*",
        "*TOKEN",
        "*_SECRET",
        "*_SECRET_*",
        "*SECRET*",
        "*_PASSWORD",
        "*PASSWD*",
        "*_KEY",
        "*_API_KEY",
        "*_PRIVATE_KEY",
        "AWS_*",
        "*_CREDENTIALS",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "NPM_TOKEN",
        "*_SESSION",
        "*COOKIE*",
    )

    def passes(self, name: str) -> bool:
        """Does the variable `name` reach the agent?  deny > allow > secret-looking > default.

        Secret patterns are matched case-insensitively (`github_token` is as
        secret as `GITHUB_TOKEN`); allow/deny lists are matched exactly as written
        (globs allowed).
        """
        deny, allow, secret = _env_matchers(self.deny, self.allow, self.secret_patterns)
        if deny is not None and deny.match(name):
            return False
        if allow is not None and allow.match(name):
            return True
        if not self.pass_by_default:
            return False
        return secret is None or not secret.match(name.upper())

    def apply(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment the agent gets from `environ`: filtered, then `set` applied."""
        out = {k: v for k, v in environ.items() if self.passes(k)}
        out.update(self.set)
        return out


class Enforcement(Record):
    """`enforcement:`: layers that must be present (else refuse to start) and audit durability."""

    require: frozenset[str] = frozenset({"landlock", "seccomp"})
    durability: Literal["batch", "strict"] = "batch"


class AuditSettings(Record):
    """`audit:`: what the trail records beyond every denial.

    file_access "denied" (default): file opens the supervisor refused; "all": every
    file open it decided too (batched into the trail like every event; no stderr line)."""

    file_access: Literal["denied", "all"] = "denied"


class Policy(Record):
    path: Path  # the file it was loaded from (or a preset's path)
    sha256: str  # of the file's bytes, for the audit trail
    version: int
    mode: Mode
    workspace: Path  # absolute, resolved
    home: Path  # absolute; `~/` patterns expand against it
    extends: tuple[str, ...]  # ("system",) unless the policy says `extends: []`
    blocks: Mapping[str, ActionBlock]  # one per action in ACTIONS, always all four
    environment: Environment
    enforcement: Enforcement
    # Blocks as written by the user (for `check` and the report); `blocks` adds
    # the baseline and protected-path rules.
    declared_actions: tuple[str, ...] = ()
    # "native" (landgate YAML/JSON) or "safeclaw" (JSON action blocks); decides
    # what a leading-slash pattern like `/.ssh/` means.
    format: str = "native"
    # The policy files this one extends, directly or through others (`extends:`).
    parents: tuple[Path, ...] = ()
    audit: AuditSettings = AuditSettings()
    # Evaluator's compiled index (built lazily by sandbox.policy.evaluate); not
    # part of the policy's value.
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def block(self, action: str) -> ActionBlock:
        return self.blocks[action]

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        cwd: Path | None = None,
        home: Path | None = None,
        audit_dir: Path | None = None,
    ) -> Policy:
        """Load and validate a policy file (YAML or SafeClaw JSON); raises PolicyError."""
        from sandbox.policy.loader import load_policy

        return load_policy(path, cwd=cwd, home=home, audit_dir=audit_dir)

    @classmethod
    def from_dict(
        cls,
        data: object,
        *,
        source: str = "<dict>",
        cwd: Path | None = None,
        home: Path | None = None,
    ) -> Policy:
        """Validate a policy given as Python data (the same shape as the YAML)."""
        from sandbox.policy.loader import policy_from_dict

        return policy_from_dict(data, source=source, cwd=cwd, home=home)


class DecisionContext(Record):
    """What the evaluator may need beyond the target string.

    cwd: base for relative paths in targets (default: the workspace).
    resolved_exe: the executable the kernel resolved (recorded; exec rules may match it).
    names: for a network target that is an IP, the host names the sandbox's DNS mapped to it.
    """

    cwd: Path | None = None
    resolved_exe: str | None = None
    names: tuple[str, ...] = ()


class Decision(Record):
    """The outcome of `decide`, with everything needed to explain it.

    `rule` is the deciding rule, or None when the block's default decided.
    `considered` lists the other candidate rules with why each did not decide
    ("no match", "matched, but deny rule 2 wins", ...).
    """

    action: str
    target: str  # normalised target as matched
    effect: Effect
    rule: Rule | None
    reason: str
    default_source: SourceRef | None = None
    considered: tuple[tuple[Rule, str], ...] = ()

    @property
    def is_default(self) -> bool:
        return self.rule is None

    def rule_ref(self) -> str:
        """'rule 4, policy.yaml:21', or 'default deny of file_read (policy.yaml:3)'."""
        if self.rule is not None:
            return self.rule.ref()
        where = f" ({self.default_source})" if self.default_source else " (implied)"
        return f"default {self.effect} of {self.action}{where}"

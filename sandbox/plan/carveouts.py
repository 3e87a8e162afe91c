"""Carve-outs and protected paths: deny rules inside granted trees (DESIGN, "Carve-outs and
protected paths").

Decided at access time, on the object, by the supervisor's open check
(csrc/supervise_open.c) on every rung: the open is resolved in the agent's view,
judged by the one compiled decision (csrc/judge_path.c: the real path, and device +
inode), performed by an opener thread restricted by the sandbox's own Landlock ruleset
and injected with ADDFD, or refused with EACCES.  No launch-time walk decides
anything, so launch cost does not depend on the size of a granted tree, and files
that appear, are renamed over or replaced later are judged like the others.

For each deny rule with a path the plan says which mechanism covers it:
  landlock    no grant of that access reaches it: the kernel refuses the access (and
              an open the supervisor performs for the agent is refused by the
              opener's Landlock domain, and recorded)
  open-check  a grant reaches it: the supervisor judges every open that needs it
A reachable deny with no open check (no supervisor) is uncovered: `run` refuses
(exit 125) unless --best-effort.

Which opens the seccomp filter hands to the supervisor (`notify_writes`,
`notify_reads`): opens that can write or create (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC,
O_APPEND, O_TMPFILE, creat, every openat2: its flags are behind a pointer) when a write
deny reaches a writable grant (the protected paths always do); read-only opens too only
when a read deny reaches a readable grant, or when `audit: {file_access: all}` asks for
a record of every open.  Every other open goes straight to Landlock.
"""

from __future__ import annotations

from sandbox.plan.landlock import READ, WRITE, LandlockPlan, LandlockRule, is_beneath
from sandbox.policy.layers import ACCESS_TIME_LIMITS
from sandbox.policy.model import PathPattern, Policy
from sandbox.record import Record

LIMITS = ACCESS_TIME_LIMITS
READ_LIMIT = (
    "read-only opens are not seen by the supervisor (no read deny reaches a readable grant): "
    "Landlock alone decides them"
)


class DenyCoverage(Record):
    action: str
    rule: str  # ref
    pattern: str
    origin: str
    mechanisms: tuple[str, ...]
    covered: bool
    gaps: tuple[str, ...]  # why it is not covered

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "rule": self.rule,
            "pattern": self.pattern,
            "origin": self.origin,
            "mechanisms": list(self.mechanisms),
            "covered": self.covered,
            "gaps": list(self.gaps),
        }


class CarveOutPlan(Record):
    coverage: tuple[DenyCoverage, ...]
    notify_writes: bool  # write/create opens go to the supervisor
    notify_reads: bool  # read-only opens too
    limits: tuple[str, ...]  # what the access-time decision does not cover

    @property
    def uncovered(self) -> tuple[DenyCoverage, ...]:
        return tuple(c for c in self.coverage if not c.covered)

    @property
    def open_check(self) -> bool:
        return self.notify_writes or self.notify_reads

    def to_dict(self) -> dict[str, object]:
        return {
            "mechanism": "supervisor open check at access time" if self.open_check else "none",
            "notify_write_opens": self.notify_writes,
            "notify_read_opens": self.notify_reads,
            "coverage": [c.to_dict() for c in self.coverage],
            "not_covered": list(self.limits),
        }


def _grants_for(action: str, ll: LandlockPlan) -> list[LandlockRule]:
    need = READ if action == "file_read" else WRITE
    return [r for r in ll.rules if r.access & need]


def reaches_grant(pp: PathPattern, grants: list[LandlockRule]) -> bool:
    """Can a path this deny matches lie inside one of `grants`?  Decided on the patterns
    alone (no walk): an unanchored deny (`**/.env`) can be anywhere; an anchored one where
    its literal base and a grant nest in either direction."""
    if not grants:
        return False
    if not pp.anchored or pp.base is None:
        return True
    base = pp.base
    if "\\" in base:
        # Not literal text: the glob reads `a\\*b` as the name `a*b`, which the string
        # compare below would miss (a grant of that very directory).  Assume it reaches.
        return True
    return any(is_beneath(base, g.path) or is_beneath(g.path, base) for g in grants)


def plan_carve_outs(
    policy: Policy, ll: LandlockPlan, *, open_check: bool, enforce: bool = True
) -> CarveOutPlan:
    """Per deny rule, the mechanism that covers it, and which opens the supervisor sees.

    `open_check`: a supervisor that does the open check is available.  `enforce=False`
    (simulation): every open is observed, nothing is covered by a refusal."""
    coverage: list[DenyCoverage] = []
    reach = {"file_read": False, "file_write": False}
    for action in ("file_read", "file_write"):
        grants = _grants_for(action, ll)
        for rule in policy.block(action).rules:
            if rule.effect != "deny" or rule.path is None:
                continue
            ref = rule.ref()
            if not reaches_grant(rule.path, grants):
                coverage.append(
                    DenyCoverage(action, ref, rule.pattern, rule.origin, ("landlock",), True, ())
                )
                continue
            reach[action] = True
            if open_check or not enforce:
                coverage.append(
                    DenyCoverage(action, ref, rule.pattern, rule.origin, ("open-check",), True, ())
                )
            else:
                coverage.append(
                    DenyCoverage(
                        action,
                        ref,
                        rule.pattern,
                        rule.origin,
                        (),
                        False,
                        ("a grant reaches it and there is no supervisor open check",),
                    )
                )
    record_all = policy.audit.file_access == "all"
    writes = open_check and (reach["file_write"] or record_all)
    reads = open_check and (reach["file_read"] or record_all)
    limits = LIMITS + (() if reads or not writes else (READ_LIMIT,))
    return CarveOutPlan(
        coverage=tuple(coverage),
        notify_writes=writes,
        notify_reads=reads,
        limits=limits if open_check else (),
    )

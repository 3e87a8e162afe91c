"""Carve-outs: deny rules inside granted trees (DESIGN §2, "carve-outs").

For each deny rule with a path, the plan says which mechanism covers it:
  landlock    it lies outside every grant (or removed the grant): the kernel denies it
  mask        a mount namespace exists: every match present at launch is hidden
              (/dev/null over a file, an empty read-only tmpfs over a directory;
              a write deny becomes a read-only bind of the path onto itself)
  open-check  the supervisor opens files itself and judges the inode (when installed)
  file-mode   not root and the file is unreadable/unwritable to this uid anyway
If an existing match is covered by none of these, the plan marks the rule
uncovered and `run` refuses (exit 125) instead of running it.

Walks are bounded (`WALK_LIMIT` entries) and only over the grants that come
from the user's policy (the workspace, home grants): the system baseline's
trees are not scanned for secrets.  Unanchored denies (`**/.env`) walk every
such grant; anchored ones only their literal base.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sandbox.plan.landlock import (
    READ,
    WALK_LIMIT,
    WRITE,
    LandlockPlan,
    LandlockRule,
    is_beneath,
    match,
)
from sandbox.policy.baseline import HOOK_DIRS, hook_globs
from sandbox.policy.model import PathPattern, Policy, Rule
from sandbox.policy.patterns import component_matcher, has_glob, parse_path_pattern

MaskKind = Literal["file", "dir", "readonly"]


@dataclass(frozen=True, slots=True)
class Mask:
    path: str
    kind: MaskKind
    rule: str  # the deny rule's ref

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class DenyCoverage:
    action: str
    rule: str  # ref
    pattern: str
    origin: str
    mechanisms: tuple[str, ...]
    matches: int  # existing matches inside grants at plan time
    covered: bool  # every existing match is covered
    gaps: tuple[str, ...]  # what is not covered (files created later, truncated walks)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "rule": self.rule,
            "pattern": self.pattern,
            "origin": self.origin,
            "mechanisms": list(self.mechanisms),
            "matches_at_launch": self.matches,
            "covered": self.covered,
            "gaps": list(self.gaps),
        }


@dataclass(frozen=True, slots=True)
class CarveOutPlan:
    masks: tuple[Mask, ...]
    coverage: tuple[DenyCoverage, ...]
    walked: int
    truncated: bool

    @property
    def uncovered(self) -> tuple[DenyCoverage, ...]:
        return tuple(c for c in self.coverage if not c.covered)

    def to_dict(self) -> dict[str, object]:
        return {
            "masks": [m.to_dict() for m in self.masks],
            "coverage": [c.to_dict() for c in self.coverage],
            "entries_walked": self.walked,
            "walk_truncated": self.truncated,
        }


def _grants_for(action: str, ll: LandlockPlan) -> list[LandlockRule]:
    need = READ if action == "file_read" else WRITE
    return [r for r in ll.rules if r.access & need]


def _scan_roots(
    pp_anchored: bool,
    base: str | None,
    grants: list[LandlockRule],
    policy_grants: list[LandlockRule],
    policy: Policy,
) -> list[str]:
    """Where matches of a deny rule can be, limited to the grants."""
    roots: list[str] = []
    if pp_anchored and base is not None:
        for g in grants:
            if is_beneath(base, g.path):
                roots.append(base)  # the deny lies inside this grant
            elif is_beneath(g.path, base):
                roots.append(g.path)  # the grant lies inside the deny's base
    else:
        for g in policy_grants:
            if g.path == "/":
                # Default allow: scan where the user's secrets live, not the system.
                roots += [str(policy.workspace), str(policy.home)]
            else:
                roots.append(g.path)
    # Drop roots nested in other roots.
    roots = sorted(set(roots))
    out: list[str] = []
    for r in roots:
        if not any(is_beneath(r, o) and r != o for o in out):
            out.append(r)
    return out


def _readable_by_us(path: str, write: bool) -> bool:
    return os.access(path, os.W_OK if write else os.R_OK, follow_symlinks=True)


@dataclass(slots=True)
class _Scan:
    """One deny rule's search for existing matches (filled by pass 1 and the walks)."""

    action: str
    ref: str
    pattern: str
    origin: str
    pp: PathPattern
    has_roots: bool
    found: list[tuple[str, bool]] = field(default_factory=list)
    truncated: bool = False


@dataclass(slots=True)
class _Job:
    """Find `scan`'s matches beneath `root` (root excluded: pass 1 checked it)."""

    scan: _Scan
    root: str
    pruned: list[str] = field(default_factory=list)  # matched directories: not searched further


def _name_filter(pp: PathPattern) -> tuple[str | None, Callable[[str], bool] | None]:
    """What the last path component of a match must be: (literal name, or a matcher), or
    (None, None) when any name can match.

    Sound for every entry the walk has to judge: a match of a directory pattern
    (`.git/hooks/`, `a/**`) below its top directory is beneath an entry that matched
    first (the walk yields a directory before its children) and is pruned there."""
    comps = pp.glob.split("/")
    while comps and comps[-1] == "**":
        comps.pop()
    if not comps or not comps[-1]:
        return None, None
    last = comps[-1]
    if "\\" not in last and not has_glob(last):
        return last, None
    return None, component_matcher(last)


def _run_walks(jobs: list[_Job]) -> int:
    """Walk each distinct tree once and give every job its matches; returns entries walked.

    A job whose root is nested in a walked tree shares that walk when the walk was
    complete; beneath a truncated walk it gets its own walk (and its own limit),
    as if it had walked alone."""
    walked = 0
    pending = sorted({j.root for j in jobs})
    while pending:
        tops = [r for r in pending if not any(o != r and is_beneath(r, o) for o in pending)]
        served: set[str] = set()
        for top in tops:
            entries, truncated = _walk_tree(top)
            walked += len(entries)
            here = [
                j
                for j in jobs
                if j.root == top
                or (not truncated and is_beneath(j.root, top) and j.root in pending)
            ]
            for j in here:
                served.add(j.root)
                if truncated:
                    j.scan.truncated = True
            _match_entries(entries, here, top)
        pending = [r for r in pending if r not in served]
    return walked


def _walk_tree(root: str) -> tuple[list[tuple[str, str, bool]], bool]:
    """(path, name, is_dir) beneath root in walk order (a directory before its children),
    as `landlock.walk`: no symlinks followed, /proc, /sys, /dev not entered, at most
    WALK_LIMIT entries (truncated when the limit is reached)."""
    out: list[tuple[str, str, bool]] = []
    stack = [root]
    limit = WALK_LIMIT
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError:
            continue
        for e in entries:
            if len(out) >= limit:
                return out, True
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                continue
            path = e.path
            out.append((path, e.name, is_dir))
            if is_dir and path not in ("/proc", "/sys", "/dev"):
                stack.append(path)
    return out, len(out) >= limit


def _match_entries(entries: list[tuple[str, str, bool]], jobs: list[_Job], top: str) -> None:
    """Record every job's matches among `entries` (the walk of `top`).

    An entry is checked against a job only when its name can end a match (a dict
    lookup or a glob run), then fully: beneath the job's root, not beneath a
    directory the job already matched, and the rule's own pattern."""
    if not jobs:
        return
    by_name: dict[str, list[_Job]] = {}
    by_glob: list[tuple[Callable[[str], bool], _Job]] = []
    always: list[_Job] = []
    for j in jobs:
        name, rx = _name_filter(j.scan.pp)
        if name is not None:
            by_name.setdefault(name, []).append(j)
        elif rx is not None:
            by_glob.append((rx, j))
        else:
            always.append(j)
    get = by_name.get
    for path, name, is_dir in entries:
        cands = get(name)
        if by_glob:
            globbed = [j for m, j in by_glob if m(name)]
            if globbed:
                cands = (cands or []) + globbed
        if always:
            cands = (cands or []) + always
        if not cands:
            continue
        for j in cands:
            if j.root != top and not is_beneath(path, j.root):
                continue
            if j.pruned and any(is_beneath(path, p) for p in j.pruned):
                continue
            if match(j.scan.pp, path):
                j.scan.found.append((path, os.path.isdir(path)))
                if is_dir:
                    j.pruned.append(path)


def _link_to_allowed(policy: Policy, action: str, path: str) -> bool:
    """A symlink whose name matches a deny but whose target the policy allows: no mask.

    A mask is a bind mount, and a bind mount follows the link: masking
    `/usr/lib/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt` (a `**/*.pem` deny)
    hid the system's CA bundle from every TLS client.  The kernel opens the target,
    so the target is what is judged (DESIGN §3: symlinks resolved by the object opened),
    as simulation and Landlock judge it; a link to a denied file stays masked."""
    if not os.path.islink(path):
        return False
    from sandbox.policy.evaluate import decide

    real = os.path.realpath(path)
    if real == path or not os.path.exists(real):
        return False
    return decide(policy, action, real).effect == "allow"


def _mask_pattern(rule: Rule) -> PathPattern:
    """What a mask covers for `rule`: its own pattern, except for the protected hook globs
    (every entry of `.git/hooks/` but *.sample), whose existing directory is masked whole:
    a mask cannot cover an entry made later (the supervisor's access-time checks do)."""
    assert rule.path is not None
    if rule.origin == "protected":
        for base in HOOK_DIRS:
            if rule.pattern in hook_globs(base):
                return parse_path_pattern(base + "/", workspace="/", home="/")
    return rule.path


def plan_carve_outs(
    policy: Policy,
    ll: LandlockPlan,
    *,
    mount_ns: bool,
    open_check: bool,
    is_root: bool,
    enforce: bool = True,
) -> CarveOutPlan:
    """Masks and per-rule coverage for every path deny (see the module doc).

    `enforce=False` (simulation) plans no masks: the supervisor observes opens.
    """
    masks: dict[str, Mask] = {}
    coverage: list[DenyCoverage] = []
    # Pass 1: per deny rule, the roots where its matches can be; the literal ones are checked
    # directly, the rest become walk jobs.  Pass 2 walks each distinct tree once for all jobs
    # (a preset has ~10 unanchored denies over the same grants: one walk, not ten).
    scans: list[_Scan] = []
    jobs: list[_Job] = []
    for action in ("file_read", "file_write"):
        block = policy.block(action)
        grants = _grants_for(action, ll)
        policy_grants = [
            g for g in grants if any(not ref.startswith("baseline") for ref in g.reasons)
        ]
        for rule in block.rules:
            if rule.effect != "deny" or rule.path is None:
                continue
            pp = _mask_pattern(rule)
            roots = _scan_roots(pp.anchored, pp.base, grants, policy_grants, policy)
            scan = _Scan(action, rule.ref(), rule.pattern, rule.origin, pp, bool(roots))
            scans.append(scan)
            for root in roots:
                exact = pp.anchored and pp.base is not None and pp.glob == pp.base
                if exact and os.path.lexists(root) and root == pp.base:
                    scan.found.append((root, os.path.isdir(root)))
                    continue
                if match(pp, root) and os.path.lexists(root):
                    scan.found.append((root, os.path.isdir(root)))
                    continue
                jobs.append(_Job(scan, root))
    walked_total = _run_walks(jobs)
    truncated_any = False
    for scan in scans:
        action, ref, pp, found, truncated = (
            scan.action,
            scan.ref,
            scan.pp,
            scan.found,
            scan.truncated,
        )
        write = action == "file_write"
        if not scan.has_roots:
            coverage.append(
                DenyCoverage(action, ref, scan.pattern, scan.origin, ("landlock",), 0, True, ())
            )
            continue
        truncated_any |= truncated
        mechanisms: list[str] = []
        gaps: list[str] = []
        covered = True
        if found:
            if mount_ns and enforce:
                mechanisms.append("mask")
                for path, is_dir in found:
                    if _link_to_allowed(policy, action, path):
                        continue
                    kind: MaskKind = "readonly" if write else ("dir" if is_dir else "file")
                    prev = masks.get(path)
                    if prev is None or prev.kind == "readonly":
                        masks[path] = Mask(path, kind, ref)
            elif open_check:
                mechanisms.append("open-check")
            elif not is_root and not any(_readable_by_us(p, write) for p, _ in found):
                mechanisms.append("file-mode")
            else:
                covered = False
                gaps.append(
                    f"{len(found)} existing match(es) with neither a mount namespace "
                    f"nor the supervisor's open check"
                )
        else:
            mechanisms.append(
                "mask"
                if mount_ns and enforce
                else "open-check"
                if open_check
                else "no match at launch"
            )
        if not open_check:
            gaps.append(
                "files created or renamed into a match after launch"
                + (
                    " (the open check runs only without a mount namespace: it would "
                    "cost every open an ADDFD round trip)"
                    if mount_ns and enforce
                    else ""
                )
            )
        elif "open-check" not in mechanisms:
            mechanisms.append("open-check")
        if truncated:
            gaps.append(f"walk stopped after {WALK_LIMIT} entries: deeper matches are not masked")
        coverage.append(
            DenyCoverage(
                action,
                ref,
                scan.pattern,
                scan.origin,
                tuple(mechanisms),
                len(found),
                covered,
                tuple(gaps),
            )
        )
    return CarveOutPlan(
        masks=tuple(masks[p] for p in sorted(masks)),
        coverage=tuple(coverage),
        walked=walked_total,
        truncated=truncated_any,
    )

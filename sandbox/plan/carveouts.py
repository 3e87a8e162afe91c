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
from dataclasses import dataclass
from typing import Literal

from sandbox.plan.landlock import (
    READ,
    WALK_LIMIT,
    WRITE,
    LandlockPlan,
    LandlockRule,
    is_beneath,
    match,
    walk,
)
from sandbox.policy.model import Policy

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
        return {"action": self.action, "rule": self.rule, "pattern": self.pattern,
                "origin": self.origin, "mechanisms": list(self.mechanisms),
                "matches_at_launch": self.matches, "covered": self.covered, "gaps": list(self.gaps)}


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
        return {"masks": [m.to_dict() for m in self.masks],
                "coverage": [c.to_dict() for c in self.coverage],
                "entries_walked": self.walked, "walk_truncated": self.truncated}


def _grants_for(action: str, ll: LandlockPlan) -> list[LandlockRule]:
    need = READ if action == "file_read" else WRITE
    return [r for r in ll.rules if r.access & need]


def _scan_roots(pp_anchored: bool, base: str | None, grants: list[LandlockRule],
                policy_grants: list[LandlockRule], policy: Policy) -> list[str]:
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


def plan_carve_outs(policy: Policy, ll: LandlockPlan, *, mount_ns: bool, open_check: bool,
                    is_root: bool, enforce: bool = True) -> CarveOutPlan:
    """Masks and per-rule coverage for every path deny (see the module doc).

    `enforce=False` (simulation) plans no masks: the supervisor observes opens.
    """
    masks: dict[str, Mask] = {}
    coverage: list[DenyCoverage] = []
    walked_total = 0
    truncated_any = False
    for action in ("file_read", "file_write"):
        block = policy.block(action)
        grants = _grants_for(action, ll)
        policy_grants = [g for g in grants
                         if any(not ref.startswith("baseline") for ref in g.reasons)]
        write = action == "file_write"
        for rule in block.rules:
            if rule.effect != "deny" or rule.path is None:
                continue
            pp = rule.path
            roots = _scan_roots(pp.anchored, pp.base, grants, policy_grants, policy)
            ref = rule.ref()
            if not roots:
                coverage.append(DenyCoverage(action, ref, rule.pattern, rule.origin, ("landlock",),
                                             0, True, ()))
                continue
            found: list[tuple[str, bool]] = []
            truncated = False
            for root in roots:
                if pp.anchored and pp.base is not None and pp.glob == pp.base:
                    if os.path.lexists(root) and root == pp.base:
                        found.append((root, os.path.isdir(root)))
                        continue
                if match(pp, root) and os.path.lexists(root):
                    found.append((root, os.path.isdir(root)))
                    continue
                n = 0
                prune: list[str] = []
                for path, is_dir in walk(root):
                    n += 1
                    if any(is_beneath(path, p) for p in prune):
                        continue
                    if match(pp, path):
                        found.append((path, os.path.isdir(path)))
                        if is_dir:
                            prune.append(path)
                walked_total += n
                if n >= WALK_LIMIT:
                    truncated = True
            truncated_any |= truncated
            mechanisms: list[str] = []
            gaps: list[str] = []
            covered = True
            if found:
                if mount_ns and enforce:
                    mechanisms.append("mask")
                    for path, is_dir in found:
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
                    gaps.append(f"{len(found)} existing match(es) with neither a mount namespace "
                                f"nor the supervisor's open check")
            else:
                mechanisms.append("mask" if mount_ns and enforce else "open-check" if open_check
                                  else "no match at launch")
            if not open_check:
                gaps.append("files created or renamed into a match after launch"
                            + (" (the open check runs only without a mount namespace: it would "
                               "cost every open an ADDFD round trip)" if mount_ns and enforce else ""))
            elif "open-check" not in mechanisms:
                mechanisms.append("open-check")
            if truncated:
                gaps.append(f"walk stopped after {WALK_LIMIT} entries: deeper matches are not masked")
            coverage.append(DenyCoverage(action, ref, rule.pattern, rule.origin, tuple(mechanisms),
                                         len(found), covered, tuple(gaps)))
    return CarveOutPlan(masks=tuple(masks[p] for p in sorted(masks)), coverage=tuple(coverage),
                        walked=walked_total, truncated=truncated_any)
